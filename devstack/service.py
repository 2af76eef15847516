"""The tracesearch processes: the HTTP service and, with the Kafka pipeline,
the ingester.

Adding a process = one function returning a ``ProcessSpec`` plus one entry in
``APP_PROCESSES``; ``up``, ``down``, ``status``, ``start-service`` and
``stop-service`` pick it up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack import launch, lens, process
from devstack.component import ComponentStatus, State
from devstack.paths import REPO_ROOT, processes_dir
from devstack.settings import ENV_PIPELINE, LOCALHOST, Settings

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
    return launch.app_env(settings.es_url, pipeline=settings.pipeline, kafka_bootstrap=settings.kafka_bootstrap)


def service_spec(settings: Settings, repo: Path = REPO_ROOT) -> process.ProcessSpec:
    """gunicorn serving ``app:app`` from the repository root, with Zipkin's UI on (``start`` fetches it
    first; a spec is also built to stop or list the service, which must not download anything)."""
    command = launch.service_command(
        {**app_env(settings), **launch.ui_env(lens.assets_dir(repo))}, settings.service_port
    )
    port = settings.service_port
    return process.ProcessSpec(
        name="service",
        argv=command.argv,
        cwd=repo,
        env=command.env,
        log_path=processes_dir(repo) / "service.log",
        pid_path=processes_dir(repo) / "service.pid",
        marker=launch.APP,
        health=lambda: launch.service_healthy(port),
        start_timeout=launch.SERVICE_START_TIMEOUT_S,
        endpoint=settings.service_url,
        requires=(repo / "app.py", repo / launch.GUNICORN_CONFIG),
    )


def ingester_spec(settings: Settings, repo: Path = REPO_ROOT) -> process.ProcessSpec:
    """``python -m tracesearch ingester``: Kafka -> Elasticsearch, no HTTP.

    Without a health endpoint, "ready" means it is still alive after
    ``INGESTER_SETTLE_SECONDS`` (a bad config or import error exits sooner).
    A ``PROMETHEUS_MULTIPROC_DIR`` in our own environment reaches it
    (``ProcessSpec.env`` can only add), unlike the ingesters tests start.
    """
    command = launch.ingester_command(app_env(settings), INGESTER_METRICS_PORT)
    return process.ProcessSpec(
        name="ingester",
        argv=command.argv,
        cwd=repo,
        env=command.env,
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
    lens.ensure_assets()  # the service's UI folder, downloaded once
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
