"""The propagator reads W3C, B3 (single and multi) and Jaeger headers, and writes W3C only."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context

from tracesearch.instrument import TracesearchPropagator

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"

HEADERS = {
    "w3c": {"traceparent": f"00-{TRACE}-{SPAN}-01"},
    "b3 multi": {"X-B3-TraceId": TRACE, "X-B3-SpanId": SPAN, "X-B3-Sampled": "1"},
    "b3 single": {"b3": f"{TRACE}-{SPAN}-1"},
    "jaeger": {"uber-trace-id": f"{TRACE}:{SPAN}:0:1"},
}


def remote_parent(context: Context) -> trace.SpanContext:
    return trace.get_current_span(context).get_span_context()


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_each_format_continues_the_callers_trace(name: str) -> None:
    # Header names arrive in any case; the getter used by WSGI/requests lowercases, a dict does not.
    carrier = {key.lower(): value for key, value in HEADERS[name].items()}
    parent = remote_parent(TracesearchPropagator().extract(carrier))
    assert parent.is_valid and parent.is_remote
    assert (trace.format_trace_id(parent.trace_id), trace.format_span_id(parent.span_id)) == (TRACE, SPAN)
    assert parent.trace_flags.sampled


def test_w3c_wins_when_a_request_carries_several() -> None:
    carrier = {"traceparent": f"00-{TRACE}-{SPAN}-01", "uber-trace-id": f"{OTHER_TRACE}:{SPAN}:0:1"}
    parent = remote_parent(TracesearchPropagator().extract(carrier))
    assert trace.format_trace_id(parent.trace_id) == TRACE


def test_a_request_without_headers_starts_a_new_trace() -> None:
    assert not remote_parent(TracesearchPropagator().extract({"content-type": "text/plain"})).is_valid


def test_inject_writes_w3c_tracecontext_and_baggage_only() -> None:
    propagator = TracesearchPropagator()
    context = propagator.extract({"uber-trace-id": f"{TRACE}:{SPAN}:0:1"})
    context = baggage.set_baggage("tenant", "acme", context)
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert carrier == {"traceparent": f"00-{TRACE}-{SPAN}-01", "baggage": "tenant=acme"}
    assert propagator.fields == {"traceparent", "tracestate", "baggage"}
