"""The launcher: command lines and environments, and real service and ingester processes started with
no Elasticsearch or Kafka behind them (both come up and answer without them)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from devstack import launch, pipeline, service
from devstack.settings import Settings

NOWHERE = "http://127.0.0.1:1"  # nothing listens on port 1: the processes run, their writes fail


def test_service_command_binds_its_port_and_keeps_the_callers_variables() -> None:
    env = launch.app_env(NOWHERE, prefix="p1", settings={"TRACESEARCH_WORKERS": "3"})
    command = launch.service_command(env, 5001, metrics_dir=Path("/tmp/m"))
    assert command.argv == [
        sys.executable,
        *("-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:5001", "app:app"),
    ]
    assert command.env == {
        "TRACESEARCH_ES_URL": NOWHERE,
        "TRACESEARCH_INDEX_PREFIX": "p1",
        "TRACESEARCH_WORKERS": "3",
        "TRACESEARCH_PORT": "5001",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/m",
        "PYTHONUNBUFFERED": "1",
    }


def test_app_env_leaves_unnamed_settings_to_tracesearch_and_settings_win() -> None:
    env = launch.app_env(NOWHERE, pipeline="direct", settings={"TRACESEARCH_PIPELINE": "kafka"})
    assert env == {"TRACESEARCH_ES_URL": NOWHERE, "TRACESEARCH_PIPELINE": "kafka", "PYTHONUNBUFFERED": "1"}


def test_the_ingester_never_inherits_a_metrics_folder() -> None:
    command = launch.ingester_command(launch.app_env(NOWHERE), 9999)
    assert command.argv == [sys.executable, "-m", "tracesearch", "ingester"]
    environ = command.environ({"PROMETHEUS_MULTIPROC_DIR": "/tmp/service-metrics", "HOME": "/home/x"})
    assert "PROMETHEUS_MULTIPROC_DIR" not in environ
    assert environ["HOME"] == "/home/x"
    assert environ["TRACESEARCH_INGESTER_METRICS_PORT"] == "9999"


def test_the_dev_stack_runs_the_launchers_commands() -> None:
    settings = Settings.from_env({"TRACESEARCH_PORT": "5002", "TRACESEARCH_PIPELINE": "kafka"})
    spec = service.service_spec(settings)
    assert spec.argv == launch.service_command(service.app_env(settings), 5002).argv
    assert spec.env["TRACESEARCH_PORT"] == "5002" and spec.env["TRACESEARCH_PIPELINE"] == "kafka"
    ingester = service.ingester_spec(settings)
    assert ingester.env["TRACESEARCH_INGESTER_METRICS_PORT"] == str(service.INGESTER_METRICS_PORT)


def test_kafka_names_follow_the_prefix() -> None:
    assert launch.kafka_names("itk-1") == {
        "TRACESEARCH_KAFKA_TOPIC": "itk-1-spans",
        "TRACESEARCH_KAFKA_DLQ_TOPIC": "itk-1-dlq",
        "TRACESEARCH_KAFKA_GROUP": "itk-1-group",
    }


def test_a_process_that_exits_during_start_up_is_reported_with_its_log(tmp_path: Path) -> None:
    command = launch.Command([sys.executable, "-c", "print('bad setting: TRACESEARCH_X'); raise SystemExit(3)"], {})
    child = launch.Child(launch.spawn(command, tmp_path / "bad.log"), tmp_path / "bad.log")
    with pytest.raises(launch.LaunchError, match=r"(?s)the thing exited during start-up.*bad setting: TRACESEARCH_X"):
        launch.await_ready(child, lambda: False, 20, "the thing")
    assert child.process.returncode == 3


def test_a_process_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    command = launch.Command([sys.executable, "-c", "import time; time.sleep(60)"], {})
    child = launch.Child(launch.spawn(command, tmp_path / "slow.log"), tmp_path / "slow.log")
    with pytest.raises(launch.LaunchError, match="not ready after"):
        launch.await_ready(child, lambda: False, 0.5, "the sleeper")
    assert not child.alive()


def test_the_service_starts_with_its_workers_ready_and_stops(tmp_path: Path) -> None:
    env = launch.app_env(NOWHERE, settings={"TRACESEARCH_WORKERS": "2", "TRACESEARCH_THREADS": "2"})
    running = launch.start_service(env, tmp_path, metrics_dir=tmp_path / "metrics", workers=2)
    try:
        assert running.healthy()
        assert len(running.ready_workers()) == 2
        assert (tmp_path / "metrics").is_dir()  # the caller's folder, not a fresh one of gunicorn.conf.py's
    finally:
        status = running.stop()
    assert status == 0
    assert not running.healthy()


def test_an_ingester_answers_on_its_metrics_port_even_with_a_metrics_folder_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inherited, this folder (which does not exist) would make its counters fail.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "not-there"))
    env = launch.app_env(NOWHERE, pipeline="kafka", kafka_bootstrap="127.0.0.1:1")
    ingester = launch.start_ingester(env, tmp_path)
    try:
        assert ingester.indexed() == 0.0
    finally:
        # Still waiting for a broker, it would finish its (empty) batch only once it has one.
        assert ingester.stop(signal.SIGKILL) == -signal.SIGKILL


class _Receiver:
    stopped = False

    def stop(self) -> None:
        self.stopped = True


class _Pipeline(pipeline.KafkaPipeline[_Receiver]):
    def _start_receiver(self, env: dict[str, str]) -> _Receiver:
        self.receiver_env = env
        return _Receiver()


def test_the_pipeline_gives_receiver_and_ingesters_its_names_and_settings(tmp_path: Path) -> None:
    stack = _Pipeline(NOWHERE, "127.0.0.1:1", "itk-2", tmp_path, settings={"TRACESEARCH_BULK_RETRIES": "1"})
    receiver = stack.start_service()
    assert stack.receiver_env == stack.env
    assert stack.env["TRACESEARCH_PIPELINE"] == "kafka"
    assert stack.env["TRACESEARCH_KAFKA_GROUP"] == "itk-2-group"
    assert stack.env["TRACESEARCH_INDEX_PREFIX"] == "itk-2"
    assert stack.env["TRACESEARCH_BULK_RETRIES"] == "1"
    assert stack.topics == ["itk-2-spans", "itk-2-dlq"]
    stack.stop()
    assert receiver.stopped
