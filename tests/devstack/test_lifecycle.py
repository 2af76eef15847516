"""`down`, `status` and `run` over every process of a clone, with sleepers standing in for the JVMs.

The fixture points every layout of the dev stack at a temporary folder: these
tests must never reach the real stack of the checkout they run in (other
people's nodes run there).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack import cleanup, elasticsearch, es_config, kafka, locks, pidfile, process, service, stack
from devstack.component import ComponentStatus, State
from devstack.settings import Settings

SLEEP = "import time; time.sleep(60)"
# Ports nobody uses here, so no warning about a foreign listener muddles the output.
SETTINGS = Settings.from_env(
    {"TRACESEARCH_DEVSTACK_ES_PORT": "9262", "TRACESEARCH_DEVSTACK_KAFKA_PORT": "9294", "TRACESEARCH_PORT": "4392"}
)
ES8, ES9 = SETTINGS.es_version, "9.3.2"

# Stands in for a test run: starts one sleeper in its own session (as the dev stack starts its
# servers, so it outlives this command), writes its pid file, and exits with the given status.
STARTER = f"""
import subprocess, sys
from pathlib import Path
pid_path, code, *words = sys.argv[1:]
child = subprocess.Popen([sys.executable, "-c", {SLEEP!r}, *words], start_new_session=True)
Path(pid_path).parent.mkdir(parents=True, exist_ok=True)
Path(pid_path).write_text(f"{{child.pid}}\\n")
sys.exit(int(code))
"""


def wait_for_marker(pid: int, marker: str) -> None:
    # Right after Popen the child may not show its own command line yet.
    deadline = time.monotonic() + 10
    while marker not in (pidfile.cmdline(pid) or "") and time.monotonic() < deadline:
        time.sleep(0.02)


@dataclass
class FakeClone:
    """A clone's runtime folders under ``base``, with sleepers for processes."""

    base: Path
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def es_layout(self, version: str) -> elasticsearch.Layout:
        return elasticsearch.Layout(root=self.base / "es", version=version, user=None)

    def kafka_layout(self, settings: Settings) -> kafka.Layout:
        return kafka.Layout(dist=self.base / "downloads", root=self.base / "kafka", broker_port=settings.kafka_port)

    def es_words(self, version: str, http_port: int = 9262) -> list[str]:
        """The marker of a node; its home gets the elasticsearch.yml `status` reads the port from."""
        home = self.es_layout(version).home
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "elasticsearch.yml").write_text(
            es_config.render_elasticsearch_yml(
                http_port=http_port, transport_port=http_port + 100, data_dir=home, logs_dir=home
            )
        )
        return [f"{elasticsearch.HOME_OPTION}{home}"]

    def es_node(self, version: str, http_port: int = 9262) -> int:
        return self.spawn(self.es_layout(version).pid_file, self.es_words(version, http_port))

    def kafka_words(self) -> list[str]:
        return ["kafka.Kafka", str(self.kafka_layout(SETTINGS).server_properties)]

    def kafka_broker(self) -> int:
        return self.spawn(self.kafka_layout(SETTINGS).pid_file, self.kafka_words())

    def service_process(self) -> int:
        return self.spawn(service.service_spec(SETTINGS, self.base).pid_path, ["app:app"])

    def spawn(self, pid_path: Path | None, words: list[str]) -> int:
        child = subprocess.Popen([sys.executable, "-c", SLEEP, *words], start_new_session=True)
        self.children.append(child)
        wait_for_marker(child.pid, words[-1])
        if pid_path is not None:
            pidfile.write_pid(pid_path, child.pid)
        return child.pid


Build = Callable[[Settings], process.ProcessSpec]


def in_folder(build: Callable[[Settings, Path], process.ProcessSpec], repo: Path) -> Build:
    return lambda settings: build(settings, repo)


def alive(pid: int) -> bool:
    return pidfile.is_alive(pid)


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClone]:
    fake = FakeClone(tmp_path)
    monkeypatch.setattr(elasticsearch, "layout", lambda settings: fake.es_layout(settings.es_version))
    monkeypatch.setattr(kafka, "layout", fake.kafka_layout)
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path / "locks")
    # AppProcess.build is typed (settings) -> spec; service_spec and ingester_spec also take the repo folder.
    apps = tuple(
        service.AppProcess(app.name, in_folder(app.build, tmp_path), app.disabled_because)  # type: ignore[arg-type]
        for app in service.APP_PROCESSES
    )
    monkeypatch.setattr(service, "APP_PROCESSES", apps)
    yield fake
    for child in fake.children:
        child.kill()
        child.wait()
    # Sleepers a test's command started, should the code under test have missed them.
    for pid in pidfile.find_all_by_marker(f"{tmp_path}/"):
        process.terminate(pid, timeout=5)


def test_down_stops_every_elasticsearch_node_of_the_clone_and_the_rest(clone: FakeClone, tmp_path: Path) -> None:
    es8, es9 = clone.es_node(ES8), clone.es_node(ES9, http_port=9263)
    broker, web = clone.kafka_broker(), clone.service_process()
    other_clone = FakeClone(tmp_path / "other-clone")
    foreign = other_clone.spawn(None, other_clone.es_words(ES9))
    clone.children += other_clone.children
    stack.down(SETTINGS)  # the settings name ES 8 only
    assert [pid for pid in (es8, es9, broker, web) if alive(pid)] == []
    assert not clone.es_layout(ES9).pid_file.exists()
    assert alive(foreign), "down stopped a node of another clone"
    stack.down(SETTINGS)  # idempotent


def test_down_stops_the_clones_own_servers_even_when_the_settings_name_external_ones(clone: FakeClone) -> None:
    # Started before TRACESEARCH_ES_URL / TRACESEARCH_KAFKA_BOOTSTRAP were set: the dev stack's all the same.
    es8, broker = clone.es_node(ES8), clone.kafka_broker()
    external = Settings.from_env(
        {"TRACESEARCH_ES_URL": "http://elsewhere:9200", "TRACESEARCH_KAFKA_BOOTSTRAP": "elsewhere:9092"}
    )
    stack.down(external)
    assert not alive(es8) and not alive(broker)


def test_a_node_whose_pid_file_is_gone_is_found_and_stopped(clone: FakeClone) -> None:
    es9 = clone.es_node(ES9)
    clone.es_layout(ES9).pid_file.unlink()
    assert [(n.pid, n.files.version) for n in elasticsearch.running_nodes(SETTINGS)] == [(es9, ES9)]
    assert [n.pid for n in elasticsearch.stop_all(SETTINGS)] == [es9]
    assert not alive(es9)


def test_status_lists_the_node_of_another_version(clone: FakeClone) -> None:
    es9 = clone.es_node(ES9, http_port=9263)
    configured, *others = stack.status(SETTINGS)[:2]
    assert configured.name == "elasticsearch" and configured.state is State.STOPPED
    assert others == [
        ComponentStatus(
            "elasticsearch",
            State.UNHEALTHY,  # nothing answers on 9263: the sleeper only has the node's command line
            "http://127.0.0.1:9263",
            detail=f"version {ES9}, pid {es9}, outside the current settings; `down` stops it",
            extra=True,
        )
    ]
    assert not others[0].needed


def test_export_lines_skip_a_node_outside_the_settings() -> None:
    statuses = [
        ComponentStatus("elasticsearch", State.STOPPED, "http://127.0.0.1:9200"),
        ComponentStatus("elasticsearch", State.HEALTHY, "http://127.0.0.1:9201", extra=True),
    ]
    assert stack.export_lines(statuses) == []


def starter(pid_path: Path, words: list[str], code: int = 0) -> list[str]:
    return [sys.executable, "-c", STARTER, str(pid_path), str(code), *words]


def test_run_stops_what_the_command_started_and_keeps_what_ran_before(
    clone: FakeClone, capsys: pytest.CaptureFixture[str]
) -> None:
    es8, broker = clone.es_node(ES8), clone.kafka_broker()
    command = starter(clone.es_layout(ES9).pid_file, clone.es_words(ES9), code=3)
    assert cleanup.run(command, SETTINGS) == 3  # the command's failure is the run's
    es9 = pidfile.read_pid(clone.es_layout(ES9).pid_file)
    assert es9 is None, "the ES 9 node was not stopped (its pid file is still there)"
    assert alive(es8) and alive(broker)
    assert {entry.name for entry in stack.running(SETTINGS)} == {"elasticsearch 8", "kafka"}
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("devstack: stopped what this run started: elasticsearch 9 (pid ")
    assert last.endswith(
        f"; left running as before this run: elasticsearch 8 (pid {es8}), kafka (pid {broker}) (`make down` stops them)"
    )


def test_run_keeps_a_node_that_ran_before_even_under_a_new_pid(clone: FakeClone) -> None:
    # An outage test stops and restarts the node: it is still the developer's node.
    old = clone.es_node(ES8)
    restart = shlex.join(starter(clone.es_layout(ES8).pid_file, clone.es_words(ES8)))
    command = ["sh", "-c", f"kill {old} && {restart}"]
    assert cleanup.run(command, SETTINGS) == 0
    (restarted,) = elasticsearch.running_nodes(SETTINGS)
    assert restarted.pid != old
    elasticsearch.stop_all(SETTINGS)


def test_run_with_nothing_running_before_leaves_nothing(clone: FakeClone, capsys: pytest.CaptureFixture[str]) -> None:
    command = starter(clone.kafka_layout(SETTINGS).pid_file, clone.kafka_words())
    assert cleanup.run(command, SETTINGS) == 0
    assert stack.running(SETTINGS) == []
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.endswith("; nothing of this clone's dev stack runs now")
    assert last.startswith("devstack: stopped what this run started: kafka (pid ")


def running(name: str, pid: int) -> stack.Running:
    return stack.Running(name, pid, lambda: None)


def test_report_names_what_could_not_be_stopped_and_what_went_away() -> None:
    text = cleanup.report(
        before={"elasticsearch 8", "kafka"},
        started=[running("elasticsearch 9", 12)],
        after=[running("elasticsearch 9", 12), running("kafka", 7)],
    )
    assert text == (
        "devstack: this run left nothing new running"
        "; could not stop elasticsearch 9 (pid 12) (see above; `make down` stops it)"
        "; left running as before this run: kafka (pid 7) (`make down` stops it)"
        "; no longer running although it ran before: elasticsearch 8"
    )


def test_run_fails_when_what_it_started_cannot_be_stopped(
    clone: FakeClone, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(kafka, "stop_local", lambda settings: False)  # a broker that will not stop
    command = starter(clone.kafka_layout(SETTINGS).pid_file, clone.kafka_words())
    assert cleanup.run(command, SETTINGS) == cleanup.EXIT_LEFT_RUNNING
    assert "could not stop kafka (pid " in capsys.readouterr().out.splitlines()[-1]
    (broker,) = stack.running(SETTINGS)
    process.terminate(broker.pid, timeout=5)


def test_a_launched_node_has_a_session_of_its_own(tmp_path: Path) -> None:
    # Else Ctrl-C in the terminal of the run that (re)started it (an outage test in `make test`)
    # stops a developer's node along with the tests.
    files = elasticsearch.Layout(root=tmp_path, version=ES8, user=None)
    launcher = files.home / "bin" / "elasticsearch"
    launcher.parent.mkdir(parents=True)
    # Stands in for `bin/elasticsearch -d -p FILE`: leaves a daemon behind and writes its pid.
    launcher.write_text('#!/bin/sh\nsleep 60 >/dev/null 2>&1 &\necho $! > "$3"\n')
    launcher.chmod(0o755)
    elasticsearch._launch(files, tmp_path / "jdk")
    node = pidfile.read_pid(files.pid_file)
    assert node is not None
    try:
        assert os.getsid(node) != os.getsid(0)
    finally:
        process.terminate(node, timeout=5)
