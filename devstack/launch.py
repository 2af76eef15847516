"""How a tracesearch process is started, told ready and stopped: the service (gunicorn serving
``app:app``) and the Kafka ingester (``python -m tracesearch ingester``).

The command lines and environment are built here once. Tests and benchmarks start the processes as
children of their own (``start_service``, ``start_ingester``) that die with them; the dev stack runs
the same ``Command`` in the background with a pid file (``devstack.service``).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import DevstackError
from devstack.health import wait_until
from devstack.paths import REPO_ROOT
from devstack.process import dies_with_parent
from devstack.settings import ENV_ES_URL, ENV_KAFKA_BOOTSTRAP, ENV_PIPELINE, ENV_SERVICE_PORT, LOCALHOST

APP = "app:app"
GUNICORN_CONFIG = "gunicorn.conf.py"

ENV_INDEX_PREFIX = "TRACESEARCH_INDEX_PREFIX"
ENV_KAFKA_TOPIC = "TRACESEARCH_KAFKA_TOPIC"
ENV_KAFKA_DLQ_TOPIC = "TRACESEARCH_KAFKA_DLQ_TOPIC"
ENV_KAFKA_GROUP = "TRACESEARCH_KAFKA_GROUP"
ENV_INGESTER_METRICS_PORT = "TRACESEARCH_INGESTER_METRICS_PORT"
ENV_UI = "TRACESEARCH_UI"
ENV_UI_DIR = "TRACESEARCH_UI_DIR"
# gunicorn.conf.py makes a fresh folder when this is unset.
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"

SERVICE_START_TIMEOUT_S = 60.0
INGESTER_START_TIMEOUT_S = 30.0
WORKERS_READY_TIMEOUT_S = 60.0
# gunicorn's graceful_timeout is 30 s: a worker finishing its requests gets that long.
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2
# Generous: on a busy machine a service still booting its workers answers slowly.
PROBE_TIMEOUT_S = 5.0
LOG_TAIL_CHARS = 4000
INDEXED_COUNTER = "tracesearch_spans_indexed_total"

# gunicorn.conf.py's post_worker_init logs this once the worker has loaded the app ("Booting worker"
# comes before, while it is still importing).
_WORKER_READY = re.compile(r"worker (\d+) ready")


class LaunchError(DevstackError):
    """A process that exited or did not become ready; the message carries its log's tail."""


@dataclass(frozen=True)
class Command:
    """What to run, and how its environment differs from the parent's."""

    argv: list[str]
    env: dict[str, str]
    # Taken out of the parent's environment (``env`` cannot say "not set").
    unset: tuple[str, ...] = ()

    def environ(self, parent: Mapping[str, str]) -> dict[str, str]:
        merged = {**parent, **self.env}
        for name in self.unset:
            merged.pop(name, None)
        return merged


def app_env(
    es_url: str,
    *,
    prefix: str | None = None,
    pipeline: str | None = None,
    kafka_bootstrap: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What points a tracesearch process at its Elasticsearch (and Kafka); None keeps tracesearch's
    default. ``settings`` (any TRACESEARCH_* variables) come last and win."""
    env = {ENV_ES_URL: es_url, "PYTHONUNBUFFERED": "1"}  # log lines reach the log file at once
    if prefix is not None:
        env[ENV_INDEX_PREFIX] = prefix
    if pipeline is not None:
        env[ENV_PIPELINE] = pipeline
    if kafka_bootstrap is not None:
        env[ENV_KAFKA_BOOTSTRAP] = kafka_bootstrap
    return {**env, **(settings or {})}


def ui_env(folder: Path) -> dict[str, str]:
    """What turns the service's Zipkin UI on, served from ``folder`` (``devstack.lens.ensure_assets()``)."""
    return {ENV_UI: "true", ENV_UI_DIR: str(folder)}


def kafka_names(prefix: str) -> dict[str, str]:
    """A topic, dead-letter topic and consumer group named after an index prefix, so that a test or
    benchmark run shares no offsets and no messages with another run or with the dev stack."""
    return {
        ENV_KAFKA_TOPIC: f"{prefix}-spans",
        ENV_KAFKA_DLQ_TOPIC: f"{prefix}-dlq",
        ENV_KAFKA_GROUP: f"{prefix}-group",
    }


def service_command(
    env: Mapping[str, str], port: int, *, metrics_dir: Path | None = None, python: str = sys.executable
) -> Command:
    """gunicorn serving ``app:app``, run from the repository root with its config file.

    ``python -m gunicorn``: the service runs on the interpreter (and venv) of whoever starts it, like
    the ingester. ``--bind`` on the command line wins over the config file, so the port is the one
    the caller health-checks.
    """
    argv = [python, "-m", "gunicorn", "-c", GUNICORN_CONFIG, "--bind", f"{LOCALHOST}:{port}", APP]
    extra = {ENV_SERVICE_PORT: str(port)}
    if metrics_dir is not None:
        extra[ENV_METRICS_DIR] = str(metrics_dir)
    return Command(argv, {**env, **extra})


def ingester_command(env: Mapping[str, str], metrics_port: int, *, python: str = sys.executable) -> Command:
    """``python -m tracesearch ingester``: Kafka -> Elasticsearch, its /metrics on ``metrics_port``.

    Its counters are its own (one process, its own port): a service's multiprocess folder inherited
    from the parent would mix them with the service's.
    """
    argv = [python, "-m", "tracesearch", "ingester"]
    return Command(argv, {**env, ENV_INGESTER_METRICS_PORT: str(metrics_port)}, unset=(ENV_METRICS_DIR,))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[int, bytes] | None:
    """Status and body of a GET on this machine, None when nothing answered.

    http.client rather than urllib or requests: no proxy from the environment can come in between.
    """
    connection = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def service_healthy(port: int) -> bool:
    """/health answers 200: the process serves, whatever its dependencies do."""
    answer = http_get(port, "/health")
    return answer is not None and answer[0] == http.client.OK


def metrics_path(name: str) -> str:
    """/metrics of only the series ``name``: rendering every series (the span-metric histograms) costs
    an ingester tens of milliseconds of CPU, which frequent polling would add to what it measures."""
    return f"/metrics?name[]={name}"


def ingester_metrics_answer(port: int) -> bool:
    answer = http_get(port, metrics_path(INDEXED_COUNTER))
    return answer is not None and answer[0] == http.client.OK


@dataclass
class Child:
    """A process started by ``spawn``, its output in ``log_path``."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log_text()[-chars:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send ``sig`` (SIGTERM: the service finishes its requests, an ingester its batch), wait up to
        ``timeout`` seconds, then SIGKILL; return the exit status."""
        if self.alive():
            self.process.send_signal(sig)
        return self.wait_or_kill(timeout)

    def wait_or_kill(self, timeout: float = STOP_TIMEOUT_S) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class ServiceProcess(Child):
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def healthy(self) -> bool:
        return service_healthy(self.port)

    def ready_workers(self) -> set[int]:
        """Pids of the gunicorn workers that have loaded the app, per the log."""
        return {int(pid) for pid in _WORKER_READY.findall(self.log_text())}

    def wait_for_workers(self, count: int, timeout: float = WORKERS_READY_TIMEOUT_S) -> None:
        """Until ``count`` workers have loaded the app: on a busy machine one can lag seconds behind
        the first, which meanwhile takes every request."""
        if not wait_until(lambda: len(self.ready_workers()) >= count, timeout=timeout, interval=POLL_S):
            raise LaunchError(f"fewer than {count} gunicorn workers ready after {timeout:.0f}s:\n{self.log_tail()}")


@dataclass
class IngesterProcess(Child):
    metrics_port: int

    def counter(self, name: str) -> float:
        """A counter of this ingester's own /metrics; 0 while it has not counted anything."""
        answer = http_get(self.metrics_port, metrics_path(name))
        if answer is None:
            raise LaunchError(f"the ingester's /metrics on port {self.metrics_port} does not answer")
        for line in answer[1].decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return 0.0

    def indexed(self) -> float:
        return self.counter(INDEXED_COUNTER)


def spawn(command: Command, log_path: Path, cwd: Path = REPO_ROOT) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log_path``, as a child that dies with this process.

    A test or benchmark run killed with SIGKILL (or by a CI timeout) would otherwise leave gunicorns
    and ingesters running, holding ports and writing into the next run's Elasticsearch. Start from
    the main thread: the signal comes when the starting *thread* ends.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command.argv,
            cwd=cwd,
            env=command.environ(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=dies_with_parent,
        )


def await_ready(child: Child, ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Until ``ready``; if the child exits first or ``timeout`` passes, stop it and raise with its log."""
    started = time.monotonic()
    if wait_until(ready, timeout=timeout, interval=POLL_S, still_starting=child.alive):
        return
    reason = "exited" if not child.alive() else f"not ready after {time.monotonic() - started:.0f}s"
    child.stop()
    raise LaunchError(f"{what} {reason} during start-up (log {child.log_path}):\n{child.log_tail()}")


def start_service(
    env: Mapping[str, str],
    folder: Path,
    *,
    port: int | None = None,
    metrics_dir: Path | None = None,
    workers: int | None = None,
    timeout: float = SERVICE_START_TIMEOUT_S,
) -> ServiceProcess:
    """The service on ``port`` (a free one by default), logging to ``folder``; returns once /health
    answers and, with ``workers``, that many workers have loaded the app."""
    port = port or free_port()
    log_path = folder / f"service-{port}.log"
    command = service_command(env, port, metrics_dir=metrics_dir)
    service = ServiceProcess(spawn(command, log_path), log_path, port)

    def ready() -> bool:
        return service.healthy() and (workers is None or len(service.ready_workers()) >= workers)

    await_ready(service, ready, timeout, f"the service on port {port}")
    return service


def start_ingester(
    env: Mapping[str, str], folder: Path, *, timeout: float = INGESTER_START_TIMEOUT_S
) -> IngesterProcess:
    """An ingester with its /metrics on a free port, logging to ``folder``; returns once that port
    answers (its settings are read by then; joining the consumer group comes later)."""
    port = free_port()
    log_path = folder / f"ingester-{port}.log"
    ingester = IngesterProcess(spawn(ingester_command(env, port), log_path), log_path, port)
    await_ready(ingester, lambda: ingester_metrics_answer(port), timeout, f"the ingester with metrics port {port}")
    return ingester
