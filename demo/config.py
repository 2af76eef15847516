"""The demo's shop: which services run, in which language, and how each one speaks to the next."""

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

HEALTH_PATH = "/healthz"
TRACE_ID_HEADER = "X-Trace-Id"  # frontend answers with the trace it is part of
# Orders paid with this card make payments' fake acquirer time out: the error traces.
FAILING_CARD = "tok_acquirer_timeout"
# checkout publishes every order here; inventory (Java) consumes it.
ORDERS_TOPIC = "shop.orders"
# Where the demo's services write their ECS JSON log lines, and the index a shipper puts them in
# (it matches TRACESEARCH_LOGS_INDEX's default, logs-*).
LOGS_INDEX = "logs-shop-demo"
# The load generator: a storefront gateway still on a Jaeger client, so the first hop of every
# trace carries only uber-trace-id.
STOREFRONT = "storefront"


class Runtime(Enum):
    """How a service is started and connected to tracesearch."""

    PYTHON_ZERO_CODE = "Python, opentelemetry-instrument with the tracesearch distro (no tracing code)"
    PYTHON_SETUP = "Python, tracesearch.instrument.setup()"
    JAVA_AGENT = "Java, OpenTelemetry Java agent (no tracing code)"
    NODE_SDK = "Node.js, @opentelemetry/sdk-node with auto-instrumentations"

    @property
    def language(self) -> str:
        return self.value.split(",")[0]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    runtime: Runtime
    version: str
    # Services this one calls (their URLs are passed in); Kafka is not a call.
    calls: tuple[str, ...] = ()
    # What it writes on outgoing requests; every service reads W3C, and the Python ones B3 and Jaeger too.
    speaks: str = "W3C traceparent"
    # Traces go out as OTLP/HTTP protobuf unless this names another OTEL_TRACES_EXPORTER.
    exporter: str = "otlp"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("frontend", Runtime.PYTHON_ZERO_CODE, "2.4.1", calls=("checkout",)),
    ServiceSpec("checkout", Runtime.PYTHON_SETUP, "1.9.0", calls=("inventory", "payments")),
    ServiceSpec("inventory", Runtime.JAVA_AGENT, "0.8.0", calls=("recommendations",), speaks="B3 multi + W3C"),
    ServiceSpec("recommendations", Runtime.NODE_SDK, "1.2.0", calls=("catalog",), speaks="B3 multi only"),
    # An older Python service that still exports Zipkin v2 JSON (tracesearch's /api/v2/spans).
    ServiceSpec("catalog", Runtime.PYTHON_SETUP, "0.7.3", exporter="zipkin_json"),
    # OTLP/HTTP JSON: the third ingest path.
    ServiceSpec("payments", Runtime.PYTHON_SETUP, "3.2.0", exporter="otlp_json_http"),
)
SERVICES_BY_NAME = {spec.name: spec for spec in SERVICES}
PYTHON_RUNTIMES = (Runtime.PYTHON_ZERO_CODE, Runtime.PYTHON_SETUP)


def resolve_base_url(explicit: str | None = None) -> str:
    """--base-url wins over $TRACESEARCH_URL, which wins over the default."""
    url = explicit or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url.rstrip("/")


def expected_edges() -> frozenset[tuple[str, str]]:
    """(caller, callee) for every call in the shop, the storefront's included."""
    calls = {(spec.name, callee) for spec in SERVICES for callee in spec.calls}
    return frozenset({(STOREFRONT, "frontend"), *calls})
