"""Our Zipkin API answers as the real Zipkin server does, and our Jaeger API can search what it shows.

The same spans go to tracesearch and to the real Zipkin 3.6.1 (in-memory storage, started for this
module), either as raw Zipkin JSON or through the OpenTelemetry Zipkin exporter; then both are asked the
same request and the answers compared. Every name sent is lower case: Zipkin lowercases service and
span names while ours keep their case (matched ignoring it, a deliberate choice), a difference that is
not this file's. There is no real Jaeger here: the Jaeger test checks our API against its own answer.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from devstack.launch import ServiceProcess
from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.integration.zipkin_server import start_zipkin

# Zipkin's AUTOCOMPLETE_KEYS and ours: only the autocomplete test sends tags with these keys.
AUTOCOMPLETE_KEYS = "environment,http.method"
Json = Any


@dataclass
class Both:
    """tracesearch and the real Zipkin, fed the same spans."""

    ours: Service
    zipkin: ServiceProcess

    def post(self, spans: list[dict[str, Any]]) -> None:
        """Raw Zipkin v2 JSON to both."""
        for url in (self.ours.url, self.zipkin.url):
            answer = requests.post(f"{url}/api/v2/spans", json=spans, timeout=30)
            assert answer.status_code == 202, (url, answer.text)
        self.ours.refresh()

    def get(self, path: str, **params: str) -> tuple[Json, Json]:
        """(ours, Zipkin's) JSON answers to the same GET, both 200."""
        answers = []
        for url in (self.ours.url, self.zipkin.url):
            answer = requests.get(f"{url}{path}", params=params, timeout=30)
            assert answer.status_code == 200, (url, path, params, answer.status_code, answer.text)
            answers.append(answer.json())
        return answers[0], answers[1]

    def trace(self, trace_id: str) -> tuple[Json, Json]:
        """Both answers to ``/api/v2/trace/{id}``, spans in one order (neither API promises one)."""
        ours, zipkin = self.get(f"/api/v2/trace/{trace_id}")
        return by_id_and_kind(ours), by_id_and_kind(zipkin)


def by_id_and_kind(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(spans, key=lambda s: (s["id"], s.get("kind", "")))


@pytest.fixture(scope="module")
def both(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Both]:
    zipkin = start_zipkin(tmp_path_factory.mktemp("zipkin"), {"AUTOCOMPLETE_KEYS": AUTOCOMPLETE_KEYS})
    prefix = f"it-parity-{uuid.uuid4().hex[:8]}"
    try:
        ours = start_service(
            es_url,
            prefix,
            tmp_path_factory.mktemp("service"),
            {"TRACESEARCH_ZIPKIN_AUTOCOMPLETE_KEYS": AUTOCOMPLETE_KEYS},
        )
    except BaseException:
        zipkin.stop()
        raise
    yield Both(ours, zipkin)
    stop_service(ours)
    drop_prefix(es_url, prefix)
    zipkin.stop()


def tag() -> str:
    return uuid.uuid4().hex[:8]


def hex_id(bits: int = 64) -> str:
    return f"{random.getrandbits(bits):0{bits // 4}x}"


def zipkin_span(service: str, name: str, trace_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A raw Zipkin v2 span starting now, lasting 1.5 ms; ``fields`` add or replace members."""
    span: dict[str, Any] = {
        "traceId": trace_id or hex_id(128),
        "id": hex_id(),
        "name": name,
        "timestamp": time.time_ns() // 1000,
        "duration": 1500,
        "localEndpoint": {"serviceName": service},
    }
    return span | fields


def found_ids(traces: list[list[dict[str, Any]]]) -> set[str]:
    """Which traces a search found. Compared as a set: the two order a list each by their own rule (ours by
    the newest matching span), and a trace's spans are compared by the /api/v2/trace tests."""
    return {trace[0]["traceId"] for trace in traces}


# ---------------------------------------------------------------------------------------------- what comes back


def test_a_span_from_the_otel_zipkin_exporter_comes_back_with_the_tags_and_endpoints_it_was_sent_with(
    both: Both,
) -> None:
    """The exporter sends the scope twice (``otel.library.*`` and ``otel.scope.*``, the version empty
    when the tracer has none) and ``peer.service`` as a plain tag, with no remoteEndpoint."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"cart-{tag()}"}))
    for url in (both.ours.url, both.zipkin.url):
        provider.add_span_processor(SimpleSpanProcessor(ZipkinExporter(endpoint=f"{url}/api/v2/spans")))
    with provider.get_tracer("shop.cart").start_as_current_span("load cart", kind=SpanKind.CLIENT) as span:
        span.set_attribute("peer.service", "cart-db")
        span.set_attribute("db.system", "postgresql")
    provider.shutdown()
    both.ours.refresh()

    ours, zipkin = both.trace(f"{span.get_span_context().trace_id:032x}")
    assert zipkin[0]["tags"]["otel.library.name"] == "shop.cart" and "remoteEndpoint" not in zipkin[0]
    assert ours == zipkin


def test_annotations_come_back_as_they_were_sent(both: Both) -> None:
    start = time.time_ns() // 1000
    values = ['{"cart loaded": {"items": 3}}', '{"retry": {}}', "cart loaded {}", "plain"]
    span = zipkin_span(
        f"cart-{tag()}",
        "load cart",
        annotations=[{"timestamp": start + i, "value": value} for i, value in enumerate(values)],
    )
    both.post([span])

    ours, zipkin = both.trace(span["traceId"])
    assert [a["value"] for a in zipkin[0]["annotations"]] == values
    assert ours == zipkin


def test_an_error_tag_alone_comes_back_alone(both: Both) -> None:
    span = zipkin_span(f"cart-{tag()}", "load cart", kind="SERVER", tags={"error": "500"})
    both.post([span])

    ours, zipkin = both.trace(span["traceId"])
    assert zipkin[0]["tags"] == {"error": "500"}
    assert ours == zipkin


# ---------------------------------------------------------------------------------------------- what Lens asks


def test_autocomplete_keys_and_values(both: Both) -> None:
    """Lens asks for the keys when its search page opens, then for the values of the key picked."""
    service = f"web-{tag()}"
    both.post(
        [
            zipkin_span(service, "get /", tags={"environment": "prod", "http.method": "GET"}),
            zipkin_span(service, "post /", tags={"environment": "staging", "http.method": "POST"}),
            zipkin_span(service, "get /", tags={"environment": "prod", "other": "x"}),
        ]
    )

    ours, zipkin = both.get("/api/v2/autocompleteKeys")
    assert zipkin == ["environment", "http.method"]
    assert ours == zipkin
    for key in ("environment", "http.method"):
        ours, zipkin = both.get("/api/v2/autocompleteValues", key=key)
        assert zipkin and ours == zipkin, key


@pytest.mark.parametrize(
    "annotation_query",
    ["http.route", "http.route=", "http.route=/cart", "retry", "http.route and retry", "helicopter"],
)
def test_annotation_query_finds_tag_keys_and_annotation_values(both: Both, annotation_query: str) -> None:
    """In Zipkin a bare word (or ``key=``) is "an annotation with this value or a tag with this key"."""
    service = f"shop-{tag()}"
    spans = {
        "tagged": zipkin_span(service, "get /cart", tags={"http.route": "/cart"}),
        "annotated": zipkin_span(service, "get /cart", annotations=[{"timestamp": 1, "value": "http.route"}]),
        "both": zipkin_span(
            service,
            "get /cart",
            tags={"http.route": "/cart/{id}"},
            annotations=[{"timestamp": 1, "value": "retry"}],
        ),
        "neither": zipkin_span(service, "get /cart", tags={"http.method": "GET"}),
    }
    for span in spans.values():
        span["annotations"] = [a | {"timestamp": span["timestamp"]} for a in span.get("annotations", [])]
    both.post(list(spans.values()))

    ours, zipkin = both.get("/api/v2/traces", serviceName=service, annotationQuery=annotation_query)
    assert found_ids(ours) == found_ids(zipkin)


def test_every_remote_service_listed_finds_its_traces(both: Both) -> None:
    """Zipkin lists the remoteEndpoint names of a service's spans, and remoteServiceName finds those."""
    run = tag()
    web, payments, ledger, stock = (f"{name}-{run}" for name in ("web", "payments", "ledger", "stock"))
    call_stock = zipkin_span(web, "reserve", kind="CLIENT")
    both.post(
        [
            zipkin_span(web, "charge", kind="CLIENT", remoteEndpoint={"serviceName": payments, "port": 8443}),
            # peer.service as a tag, no remoteEndpoint: what the OpenTelemetry Zipkin exporter sends.
            zipkin_span(web, "post", kind="CLIENT", tags={"peer.service": ledger}),
            # A call to a service whose server span we have, but that no span of web names.
            call_stock,
            zipkin_span(stock, "reserve", call_stock["traceId"], kind="SERVER", parentId=call_stock["id"]),
        ]
    )

    ours, zipkin = both.get("/api/v2/remoteServices", serviceName=web)
    assert zipkin == [payments]
    assert ours == zipkin
    for remote in (payments, ledger, stock):
        ours, zipkin = both.get("/api/v2/traces", serviceName=web, remoteServiceName=remote)
        assert found_ids(ours) == found_ids(zipkin), remote


def test_remote_services_of_otlp_spans_are_searchable(both: Both) -> None:
    """Spans sent by OTLP name their remote service as the OTel spec's Zipkin exporter does (peer.service,
    else server.address... for client spans); each name listed finds its trace. Ours only: no OTLP here."""
    run = tag()
    service = f"checkout-{run}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{both.ours.url}/v1/traces")))
    tracer = provider.get_tracer("shop.checkout")
    traces = {}
    for name, attributes in (
        (f"payments-{run}", {"peer.service": f"payments-{run}"}),
        (f"api-{run}.example.com", {"server.address": f"api-{run}.example.com"}),
    ):
        with tracer.start_as_current_span("call", kind=SpanKind.CLIENT, attributes=attributes) as span:
            traces[name] = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()
    both.ours.refresh()

    listed = both.ours.get("/api/v2/remoteServices", serviceName=service).json()
    assert listed == sorted(traces)
    for name in listed:
        found = both.ours.get("/api/v2/traces", serviceName=service, remoteServiceName=name).json()
        assert found_ids(found) == {traces[name]}, name


# ---------------------------------------------------------------------------------------------- Jaeger


def test_every_tag_our_jaeger_api_shows_finds_its_trace(both: Both) -> None:
    """Span tags (the synthetic ones the OTLP → Jaeger mapping adds included), process tags and log fields:
    each one typed into Jaeger's tag search box, as shown, finds the trace."""
    service = f"payments-{tag()}"
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{both.ours.url}/v1/traces")))
    caller = SpanContext(
        random.getrandbits(128),
        random.getrandbits(64),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("shop", "tier:gold")]),
    )
    tracer = provider.get_tracer("shop.payments", "2.1.0")
    with tracer.start_as_current_span("charge", set_span_in_context(NonRecordingSpan(caller)), SpanKind.SERVER) as s:
        s.set_attribute("payment.amount", 12.5)
        s.set_attribute("payment.attempt", 2)
        s.add_event("retry", {"retry.reason": "timeout"})
        s.set_status(Status(StatusCode.ERROR, "payment failed"))
    provider.shutdown()
    both.ours.refresh()
    trace_id = f"{caller.trace_id:032x}"

    answer = both.ours.get(f"/api/traces/{trace_id}")
    assert answer.status_code == 200, answer.text
    [trace] = answer.json()["data"]
    [span] = trace["spans"]
    shown = [*span["tags"], *trace["processes"][span["processID"]]["tags"]]
    shown += [field for log in span["logs"] for field in log["fields"]]
    assert {"key": "otel.status_description", "type": "string", "value": "payment failed"} in shown
    missed = []
    for item in shown:
        # Typed into the box as shown: text (true, 2, 12.5 for the typed values).
        value = item["value"] if isinstance(item["value"], str) else json.dumps(item["value"])
        found = both.ours.get("/api/traces", service=service, tags=json.dumps({item["key"]: value}))
        assert found.status_code == 200, found.text
        if [t["traceID"] for t in found.json()["data"]] != [trace_id]:
            missed.append((item["key"], value))
    assert missed == []
