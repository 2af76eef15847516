"""Where tracesearch listens and which ingest path each demo service uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

DEFAULT_BASE_URL = "http://127.0.0.1:4318"
BASE_URL_ENV = "TRACESEARCH_URL"

# One long, multi-word free-text attribute so free-text search has something to find;
# NOTE_SEARCH_WORD is printed in the example query, so it must stay in ORDER_NOTE.
ORDER_NOTE = (
    "Please leave the parcel with the concierge at the front desk, ring twice because "
    "the doorbell is broken, and wrap the gift in blue paper without the price tag."
)
NOTE_SEARCH_WORD = "concierge"

# Small protocol between the demo and its service processes.
HEALTH_PATH = "/healthz"
TRACE_ID_HEADER = "X-Trace-Id"  # frontend answers with the trace it started
REPORT_PREFIX = "DEMO-REPORT "  # a service's last stdout line: what it exported
# Orders paid with this card make payments' fake acquirer time out: the error traces.
FAILING_CARD = "tok_acquirer_timeout"


class Ingest(Enum):
    """The wire format a service exports with; together they cover every ingest path."""

    OTLP_PROTOBUF = "OTLP/HTTP protobuf"
    OTLP_JSON = "OTLP/HTTP JSON"
    ZIPKIN_JSON = "Zipkin v2 JSON"

    @property
    def path(self) -> str:
        return "/api/v2/spans" if self is Ingest.ZIPKIN_JSON else "/v1/traces"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    ingest: Ingest
    version: str
    # Services this one calls; they must be started first only in the sense that
    # their URLs are known, which pre-bound sockets guarantee (see processes.py).
    calls: tuple[str, ...] = ()


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("frontend", Ingest.OTLP_PROTOBUF, "2.4.1", calls=("checkout",)),
    ServiceSpec("checkout", Ingest.OTLP_PROTOBUF, "1.9.0", calls=("inventory", "payments")),
    ServiceSpec("inventory", Ingest.ZIPKIN_JSON, "0.7.3"),
    ServiceSpec("payments", Ingest.OTLP_JSON, "3.2.0"),
)
SERVICES_BY_NAME = {spec.name: spec for spec in SERVICES}


def resolve_base_url(explicit: str | None = None) -> str:
    """--base-url wins over $TRACESEARCH_URL, which wins over the default."""
    url = explicit or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url.rstrip("/")


def ingest_url(base_url: str, ingest: Ingest) -> str:
    return base_url.rstrip("/") + ingest.path
