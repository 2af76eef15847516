"""Read-time adjusters: small fixes applied to a trace as it is read, each one function of the trace.

They work on the span model, so every API surface gets the same trace; what a wire format needs on top
(Zipkin's ``shared`` flag, valid endpoint addresses) is the codec's work (``codecs/zipkin_json.py``).
"""

from __future__ import annotations

from dataclasses import replace

from tracesearch.model import Span, SpanKind

# Where a promoted root span keeps the parent id it pointed to (see ensure_root).
MISSING_PARENT_TAG = "tracesearch.missing_parent_id"


def merge_shared(trace: list[Span]) -> list[Span]:
    """B3 shared spans (a client and a server half with one span id): the server half inherits the
    client's parent when it has none, as Zipkin's own server adjusts them."""
    parents = {s.span_id: s.parent_span_id for s in trace if s.kind is SpanKind.CLIENT and s.parent_span_id}
    return [
        replace(s, parent_span_id=parents[s.span_id])
        if s.kind is SpanKind.SERVER and not s.parent_span_id and s.span_id in parents
        else s
        for s in trace
    ]


def ensure_root(trace: list[Span]) -> list[Span]:
    """Make sure one span has no parent: Grafana's trace picker labels each trace by the first span
    without one and breaks on a trace that has none (its root span not stored, or not yet).

    The earliest span whose parent is absent from the trace, the entry point of the part we have, loses
    its parent (both halves of a shared span), which is kept in the ``tracesearch.missing_parent_id``
    attribute so nothing is hidden. Only trace lists are adjusted; a trace by id comes back as stored.
    """
    if not trace or any(not s.parent_span_id for s in trace):
        return trace
    ids = {s.span_id for s in trace}
    orphans = [s for s in trace if s.parent_span_id not in ids] or trace  # a parent cycle: any span will do
    root = min(orphans, key=lambda s: (s.start_ns // 1000, s.span_id))
    missing = root.parent_span_id
    return [
        replace(s, parent_span_id="", attributes={**s.attributes, MISSING_PARENT_TAG: missing})
        if s.span_id == root.span_id and s.parent_span_id == missing
        else s
        for s in trace
    ]
