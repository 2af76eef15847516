"""hypothesis strategies: valid spans of the canonical model (tracesearch/model.py), arbitrary JSON, and
valid wire documents with one part replaced by anything.

"Valid" is what admission (tracesearch/admission.py) stores untouched with the default ``Limits``: lower-case
hex ids that are not all zeros, 0 < start <= end, attributes within the nesting and size limits, a resource
whose ``service.name`` attribute is its service name. Such a span must come back from a lossless codec equal.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tracesearch.model import Attributes, AttrValue, Event, Link, Resource, Scope, Span, SpanKind, StatusCode

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
UINT32 = st.integers(min_value=0, max_value=2**32 - 1)
# Nanoseconds since the epoch: positive, within Elasticsearch's longs (as the receivers take them).
TIMES = st.integers(min_value=1, max_value=2**62)
TEXT = st.text(max_size=12)
KEYS = st.text(min_size=1, max_size=10)


def hex_id(length: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=length, max_size=length).filter(lambda s: s.strip("0") != "")


TRACE_IDS = hex_id(32)
SPAN_IDS = hex_id(16)

SCALARS: st.SearchStrategy[AttrValue] = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.binary(max_size=8),
)
# OTLP arrays and kvlists, nested a few levels (admission's limit is 8).
VALUES: st.SearchStrategy[AttrValue] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)
ATTRIBUTES: st.SearchStrategy[Attributes] = st.dictionaries(KEYS, VALUES, max_size=4)


@st.composite
def resources(draw: st.DrawFn) -> Resource:
    service = draw(st.text(min_size=1, max_size=10))
    attributes = draw(ATTRIBUTES)
    attributes.pop("service.name", None)
    return Resource({"service.name": service, **attributes}, service)


SCOPES = st.builds(Scope, TEXT, TEXT, ATTRIBUTES)
EVENTS = st.builds(Event, TIMES, TEXT, ATTRIBUTES, UINT32)
LINKS = st.builds(Link, TRACE_IDS, SPAN_IDS, TEXT, ATTRIBUTES, UINT32, UINT32)


@st.composite
def spans(
    draw: st.DrawFn, resource: Resource | None = None, scope: Scope | None = None, times: st.SearchStrategy[int] = TIMES
) -> Span:
    span_id = draw(SPAN_IDS)
    start = draw(times)
    parent = draw(st.one_of(st.just(""), SPAN_IDS.filter(lambda p: p != span_id)))
    return Span(
        trace_id=draw(TRACE_IDS),
        span_id=span_id,
        parent_span_id=parent,
        name=draw(TEXT),
        start_ns=start,
        end_ns=start + draw(st.integers(min_value=0, max_value=2**62 - start)),
        resource=resource or draw(resources()),
        scope=scope or draw(SCOPES),
        kind=draw(st.sampled_from(SpanKind)),
        status_code=draw(st.sampled_from(StatusCode)),
        status_message=draw(TEXT),
        attributes=draw(ATTRIBUTES),
        events=draw(st.lists(EVENTS, max_size=2)),
        links=draw(st.lists(LINKS, max_size=2)),
        trace_state=draw(TEXT),
        flags=draw(UINT32),
        dropped_attributes_count=draw(UINT32),
        dropped_events_count=draw(UINT32),
        dropped_links_count=draw(UINT32),
    )


@st.composite
def batches(draw: st.DrawFn) -> list[Span]:
    """1 to 4 spans; some share a resource and a scope, as the spans of one SDK batch do."""
    resource, scope = draw(resources()), draw(SCOPES)
    shared = spans(resource, scope)
    return draw(st.lists(st.one_of(shared, spans()), min_size=1, max_size=4))


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _paths(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*here, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*here, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` (a valid JSON document) with one value, anywhere in it, replaced by an arbitrary one: the
    decoder sees its real structure around a wrong type, a missing field's neighbour, an odd number."""
    path = draw(st.sampled_from(_paths(doc)))
    replacement = draw(JSON_VALUES)
    if not path:
        return replacement
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    return doc
