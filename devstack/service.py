"""The tracesearch processes: the HTTP service and, with the Kafka pipeline,
the ingester.

Adding a process = one function returning a ``ProcessSpec`` plus one entry in
``APP_PROCESSES``; ``up``, ``down``, ``status``, ``start-service`` and
``stop-service`` pick it up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack import process
from devstack.component import ComponentStatus, State
from devstack.health import http_ok
from devstack.paths import REPO_ROOT, processes_dir
from devstack.settings import (
    ENV_ES_URL,
    ENV_KAFKA_BOOTSTRAP,
    ENV_PIPELINE,
    ENV_SERVICE_PORT,
    LOCALHOST,
    Settings,
)

SERVICE_START_TIMEOUT = 60.0
INGESTER_SETTLE_SECONDS = 2.0
INGESTER_METRICS_PORT = 9464  # the ingester's own /metrics (Prometheus exporter's customary port)


@dataclass(frozen=True)
class AppProcess:
    name: str
    build: Callable[[Settings], process.ProcessSpec]
    # Why the process is not part of this configuration; None: it is.
    disabled_because: Callable[[Settings], str | None] = lambda _settings: None


def app_env(settings: Settings) -> dict[str, str]:
    """What the tracesearch processes get on top of our own environment.

    The URLs are those of the dev stack whether or not it is up right now,
    so ``start-service`` alone can test how the service copes with an
    outage.
    """
    return {
        ENV_ES_URL: settings.es_url,
        ENV_KAFKA_BOOTSTRAP: settings.kafka_bootstrap,
        ENV_SERVICE_PORT: str(settings.service_port),
        ENV_PIPELINE: settings.pipeline,
        "PYTHONUNBUFFERED": "1",  # log lines reach the log file at once
    }


def service_spec(settings: Settings, repo: Path = REPO_ROOT) -> process.ProcessSpec:
    """gunicorn serving ``app:app`` from the repository root."""
    argv = [venv_bin("gunicorn", repo)]
    if (repo / "gunicorn.conf.py").is_file():
        argv += ["-c", "gunicorn.conf.py"]
    # --bind on the command line wins over the config file: the port must be
    # the one the dev stack prints and health-checks.
    argv += ["--bind", f"{LOCALHOST}:{settings.service_port}", "app:app"]
    base = settings.service_url
    return process.ProcessSpec(
        name="service",
        argv=argv,
        cwd=repo,
        env=app_env(settings),
        log_path=processes_dir(repo) / "service.log",
        pid_path=processes_dir(repo) / "service.pid",
        marker="app:app",
        health=lambda: http_ok(f"{base}/health"),
        start_timeout=SERVICE_START_TIMEOUT,
        endpoint=base,
        requires=(repo / "app.py", Path(argv[0])),
    )


def ingester_spec(settings: Settings, repo: Path = REPO_ROOT) -> process.ProcessSpec:
    """``python -m tracesearch ingester``: Kafka -> Elasticsearch, no HTTP.

    Without a health endpoint, "ready" means it is still alive after
    ``INGESTER_SETTLE_SECONDS`` (a bad config or import error exits sooner).
    """
    return process.ProcessSpec(
        name="ingester",
        argv=[sys.executable, "-m", "tracesearch", "ingester"],
        cwd=repo,
        env={**app_env(settings), "TRACESEARCH_INGESTER_METRICS_PORT": str(INGESTER_METRICS_PORT)},
        log_path=processes_dir(repo) / "ingester.log",
        pid_path=processes_dir(repo) / "ingester.pid",
        marker="tracesearch ingester",
        health=None,
        settle_seconds=INGESTER_SETTLE_SECONDS,
        endpoint=f"consumes {settings.kafka_bootstrap}; metrics http://{LOCALHOST}:{INGESTER_METRICS_PORT}/metrics",
        requires=(repo / "tracesearch" / "__main__.py",),
    )


APP_PROCESSES: tuple[AppProcess, ...] = (
    AppProcess("service", service_spec),
    AppProcess(
        "ingester",
        ingester_spec,
        disabled_because=lambda s: None if s.kafka_pipeline else f"{ENV_PIPELINE} is not kafka",
    ),
)


def enabled_specs(settings: Settings) -> list[process.ProcessSpec]:
    return [p.build(settings) for p in APP_PROCESSES if p.disabled_because(settings) is None]


def start(settings: Settings | None = None) -> list[process.ProcessSpec]:
    """Start every enabled app process (idempotent); return their specs."""
    settings = settings or Settings.from_env()
    specs = enabled_specs(settings)
    for spec in specs:
        process.start(spec)
    return specs


def stop(settings: Settings | None = None) -> None:
    """Stop all app processes, including ones the configuration now disables
    (switching the pipeline must not leave a stray ingester)."""
    for spec in reversed(all_specs(settings or Settings.from_env())):
        process.stop(spec)


def all_specs(settings: Settings) -> list[process.ProcessSpec]:
    """Every app process, enabled or not: a disabled one may still run from before."""
    return [app.build(settings) for app in APP_PROCESSES]


def statuses(settings: Settings | None = None) -> list[ComponentStatus]:
    settings = settings or Settings.from_env()
    result = []
    for app in APP_PROCESSES:
        spec = app.build(settings)
        reason = app.disabled_because(settings)
        pid = process.running_pid(spec)
        if reason is not None and pid is None:
            result.append(ComponentStatus(app.name, State.DISABLED, detail=reason))
        elif pid is None:
            result.append(ComponentStatus(app.name, State.STOPPED, spec.endpoint))
        elif spec.health is None or spec.health():
            result.append(ComponentStatus(app.name, State.HEALTHY, spec.endpoint, detail=f"pid {pid}"))
        else:
            result.append(ComponentStatus(app.name, State.UNHEALTHY, spec.endpoint, detail=f"pid {pid}"))
    return result


def venv_bin(name: str, repo: Path = REPO_ROOT) -> str:
    """A console script of the project's venv.

    Prefer the interpreter running us (normally that venv), then the
    repository's .venv; the path may not exist, which ``start`` reports.
    """
    for candidate in (Path(sys.executable).parent / name, repo / ".venv" / "bin" / name):
        if candidate.is_file():
            return str(candidate)
    return str(repo / ".venv" / "bin" / name)
