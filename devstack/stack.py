"""The whole stack: Elasticsearch, Kafka, then the tracesearch processes."""

from __future__ import annotations

import logging
import shlex

from devstack import elasticsearch, kafka, service
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
        if s.name in names and s.state is State.HEALTHY and not s.extra
    ]
