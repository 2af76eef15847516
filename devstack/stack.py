"""The whole stack: Elasticsearch, Kafka, then the tracesearch processes."""

from __future__ import annotations

import functools
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from devstack import elasticsearch, kafka, process, service
from devstack.component import ComponentStatus, State
from devstack.settings import ENV_ES_URL, ENV_KAFKA_BOOTSTRAP, Settings

log = logging.getLogger(__name__)

# Printed by `env` for a healthy service; not read by the dev stack itself.
ENV_BASE_URL = "TRACESEARCH_BASE_URL"


def up(settings: Settings | None = None) -> list[str]:
    """Start what is not running yet; return the lines describing the stack."""
    settings = settings or Settings.from_env()
    elasticsearch.ensure_running(settings)
    kafka.ensure_running(settings)
    service.start(settings)
    return endpoint_lines(settings)


def down(settings: Settings | None = None) -> None:
    """Stop everything this clone runs, in reverse start order; stopped parts are skipped.

    Whatever the current settings say: every Elasticsearch node of this clone
    (`make test-es9`'s ES 9 runs on another port) and its broker stop, also
    when the settings name an external Elasticsearch or Kafka (never touched).
    """
    settings = settings or Settings.from_env()
    service.stop(settings)
    kafka.stop_local(settings)
    elasticsearch.stop_all(settings)
    externals = {ENV_KAFKA_BOOTSTRAP: settings.kafka_external_bootstrap, ENV_ES_URL: settings.es_external_url}
    for name, external in externals.items():
        if external:
            log.info("%s is set (%s): the dev stack did not start that one and leaves it alone", name, external)


def status(settings: Settings | None = None) -> list[ComponentStatus]:
    settings = settings or Settings.from_env()
    return [
        elasticsearch.status(settings),
        *elasticsearch.other_statuses(settings),
        kafka.status(settings),
        *service.statuses(settings),
    ]


@dataclass(frozen=True)
class Running:
    """A process of this clone's dev stack.

    Known by what it is, not by its pid: an outage test restarts a node under
    a new pid, and it is still the node that ran before.
    """

    name: str
    pid: int
    stop: Callable[[], object]

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"


def running(settings: Settings | None = None) -> list[Running]:
    """What of this clone's dev stack runs now, whatever the settings, in start order."""
    settings = settings or Settings.from_env()
    found = [
        Running(f"{elasticsearch.NAME} {node.files.major}", node.pid, functools.partial(elasticsearch.stop_node, node))
        for node in elasticsearch.running_nodes(settings)
    ]
    broker = kafka.running_pid(settings)
    if broker is not None:
        found.append(Running(kafka.NAME, broker, functools.partial(kafka.stop_local, settings)))
    for spec in service.all_specs(settings):
        pid = process.running_pid(spec)
        if pid is not None:
            found.append(Running(spec.name, pid, functools.partial(process.stop, spec)))
    return found


def endpoint_lines(settings: Settings) -> list[str]:
    base = settings.service_url
    rows = [
        ("Elasticsearch", settings.es_url),
        ("Kafka bootstrap", settings.kafka_bootstrap),
        ("Service", base),
        ("OTLP/HTTP traces", f"{base}/v1/traces"),
        ("Zipkin v2 spans", f"{base}/api/v2/spans"),
        ("Zipkin UI", f"{base}/zipkin/"),
    ]
    return [f"{label:<17} {value}" for label, value in rows]


def export_lines(statuses: list[ComponentStatus]) -> list[str]:
    """Shell ``export`` lines for the healthy components (for ``eval``)."""
    names = {
        elasticsearch.NAME: ENV_ES_URL,
        kafka.NAME: ENV_KAFKA_BOOTSTRAP,
        "service": ENV_BASE_URL,
    }
    return [
        f"export {names[s.name]}={shlex.quote(s.endpoint)}"
        for s in statuses
        if s.name in names and s.state is State.HEALTHY and not s.extra
    ]
