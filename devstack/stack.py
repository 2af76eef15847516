"""The whole stack: Elasticsearch, Kafka, then the tracesearch processes."""

from __future__ import annotations

import logging
import shlex

from devstack import elasticsearch, kafka, service
from devstack.component import ComponentStatus, State
from devstack.errors import ExternalComponentError
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
    """Stop everything in reverse start order; stopped parts are skipped."""
    settings = settings or Settings.from_env()
    service.stop(settings)
    for component in (kafka, elasticsearch):
        try:
            component.stop(settings)
        except ExternalComponentError as skipped:
            log.info("%s", skipped)


def status(settings: Settings | None = None) -> list[ComponentStatus]:
    settings = settings or Settings.from_env()
    return [
        elasticsearch.status(settings),
        kafka.status(settings),
        *service.statuses(settings),
    ]


def endpoint_lines(settings: Settings) -> list[str]:
    base = settings.service_url
    rows = [
        ("Elasticsearch", settings.es_url),
        ("Kafka bootstrap", settings.kafka_bootstrap),
        ("Service", base),
        ("OTLP/HTTP traces", f"{base}/v1/traces"),
        ("Zipkin v2 spans", f"{base}/api/v2/spans"),
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
        if s.name in names and s.state is State.HEALTHY
    ]
