"""Read adjusters, one test each: shared spans merged, a root promoted in trace lists."""

from __future__ import annotations

from tracesearch.model import Resource, Scope, Span, SpanKind
from tracesearch.services.adjusters import MISSING_PARENT_TAG, ensure_root, merge_shared

TRACE = "ab" * 16


def span(span_id: str, parent: str = "", kind: SpanKind = SpanKind.INTERNAL, start_us: int = 0) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=span_id * 16,
        parent_span_id=parent * 16,
        name=span_id,
        start_ns=start_us * 1000,
        end_ns=start_us * 1000 + 1000,
        resource=Resource({}, "svc"),
        scope=Scope(),
        kind=kind,
    )


def test_merge_shared_gives_the_server_half_the_clients_parent() -> None:
    root = span("a", kind=SpanKind.SERVER)
    client = span("b", "a", SpanKind.CLIENT, 1)
    server = span("b", "", SpanKind.SERVER, 2)  # B3 shared: same id, reported without a parent
    other = span("c", "", SpanKind.SERVER, 3)
    merged = merge_shared([root, client, server, other])
    assert [s.parent_span_id for s in merged] == ["", "a" * 16, "a" * 16, ""]
    assert server.parent_span_id == ""  # the stored span is left as it was


def test_ensure_root_promotes_the_earliest_orphan_and_keeps_what_it_pointed_to() -> None:
    late_orphan = span("a", "x", start_us=5)
    early_orphan = span("b", "y", start_us=1)
    child = span("c", "b", start_us=2)
    adjusted = ensure_root([late_orphan, early_orphan, child])
    assert [s.parent_span_id for s in adjusted] == ["x" * 16, "", "b" * 16]
    assert adjusted[1].attributes == {MISSING_PARENT_TAG: "y" * 16}
    # A trace that has a root is left alone.
    rooted = [span("r"), span("s", "r")]
    assert ensure_root(rooted) == rooted
