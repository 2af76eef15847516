"""Kafka mode's receiver: accept an OTLP/protobuf request without building model spans.

In Kafka mode the receiver forwards each trace's own protobuf bytes (``OtlpTraceMessages``) and the
ingester decodes them; building model spans at the receiver only served to validate them, and cost
two thirds of its CPU. ``vet`` answers, from the parsed messages alone, the one question the receiver
needs: would ``decode_resource_spans`` accept every span as it is, with no rejection, trimming or
warning? Only then does it say where each span is, for the same ``per_trace`` messages; anything else
(an invalid id, a time before retention, a value, count or nesting over the limits) gives None and
the full decoder says what is wrong. The checks are conservative: a span it passes is one the full
decoder keeps unchanged (tests/unit/codecs/test_otlp_vetting.py compares both on generated requests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from tracesearch.admission import Limits

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


def vetted_spans(resource_spans: Sequence[ResourceSpans], limits: Limits) -> list[tuple[str, int, int, bytes]] | None:
    """Where each span is and its bytes (trace id, resource index, scope index, the span serialised),
    as the full decoder's ``kept`` would say, when it would accept every span unchanged; None when
    any part needs the full decoder. (The size check needs the bytes, and re-framing reuses them.)"""
    kept: list[tuple[str, int, int, bytes]] = []
    oldest = max(limits.oldest_start_ns, 1)
    for r_index, rs in enumerate(resource_spans):
        resource = rs.resource
        if not _plain_attributes(resource.attributes, resource.ByteSize(), limits):
            return None
        for s_index, ss in enumerate(rs.scope_spans):
            scope = ss.scope
            if scope.attributes and not _plain_attributes(scope.attributes, scope.ByteSize(), limits):
                return None
            for pb in ss.spans:
                trace_id = pb.trace_id
                if not _valid_ids(trace_id, pb.span_id, pb.parent_span_id):
                    return None
                data = pb.SerializeToString()
                if not _plain_span(pb, len(data), oldest, limits):
                    return None
                kept.append((trace_id.hex(), r_index, s_index, data))
    return kept


def _valid_ids(trace_id: bytes, span_id: bytes, parent: bytes) -> bool:
    # A zero parent is valid (the decoder makes the span a root); bytes always give lower-case hex.
    return (
        len(trace_id) == 16
        and len(span_id) == 8
        and len(parent) in (0, 8)
        and trace_id != _ZERO_TRACE_ID
        and span_id != _ZERO_SPAN_ID
    )


def _plain_span(pb: Any, size: int, oldest_start_ns: int, limits: Limits) -> bool:
    start = pb.start_time_unix_nano
    if start < oldest_start_ns or pb.end_time_unix_nano < start:
        return False
    # No value can be longer than the whole message (``size`` bytes): nothing in it to truncate.
    if size > limits.max_attribute_value_bytes:
        return False
    if pb.attributes and not _plain_attributes(pb.attributes, size, limits):
        return False
    events, links = pb.events, pb.links
    if events and (
        len(events) > limits.max_events_per_span
        or not all(_plain_attributes(e.attributes, size, limits) for e in events if e.attributes)
    ):
        return False
    return not links or (
        len(links) <= limits.max_links_per_span
        and all(_plain_attributes(link.attributes, size, limits) for link in links if link.attributes)
    )


def _plain_attributes(key_values: Any, size: int, limits: Limits) -> bool:
    """Within the count and byte limits (``size``: the enclosing message's) and no array or map nested
    deeper than the depth limit (the decoder would collapse it to JSON text)."""
    if len(key_values) > limits.max_attributes_per_span or size > limits.max_attribute_value_bytes:
        return False
    for kv in key_values:
        value = kv.value
        # As in attributes_from_pb: a non-empty string or non-zero int is the member set.
        if value.string_value or value.int_value:
            continue
        if _container_depth(value) > limits.max_nesting_depth:
            return False
    return True


def _container_depth(value: Any) -> int:
    """1 for an array or map of scalars, 1 + the deepest item's for one holding more; 0 for a scalar
    (the decoder's depth count: a container at depth d > max_nesting_depth is collapsed)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return 1 + max((_container_depth(item) for item in value.array_value.values), default=0)
    if kind == "kvlist_value":
        return 1 + max((_container_depth(kv.value) for kv in value.kvlist_value.values), default=0)
    return 0
