"""Span validation, normalisation and size limits: the one place every decoder sends its spans through.

``admit`` is what decoders call per span: normalise, then ``check_span`` (refuse what cannot be stored),
then ``apply_limits`` (keep what can be stored, trimmed, with a warning).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from tracesearch.codecs.common import attribute_json
from tracesearch.model import (
    SPAN_ID_HEX_LEN,
    TRACE_ID_HEX_LEN,
    UNKNOWN_SERVICE,
    Attributes,
    AttrValue,
    DecodedBatch,
    Rejection,
    Resource,
    Span,
)

_HEX_DIGITS = "0123456789abcdef"
_ZERO_TRACE_ID = "0" * TRACE_ID_HEX_LEN
_ZERO_SPAN_ID = "0" * SPAN_ID_HEX_LEN
# A UTF-8 character is at most 4 bytes: strings shorter than limit/4 characters need no encoding to check.
_MAX_UTF8_BYTES_PER_CHAR = 4


@dataclass(frozen=True)
class Limits:
    max_attributes_per_span: int = 1000
    max_attribute_value_bytes: int = 65536
    max_nesting_depth: int = 8
    max_events_per_span: int = 1000
    max_links_per_span: int = 1000
    # Spans starting before this (the first day the retention keeps) are refused: their day's index is
    # deleted, so storing them would be a silent loss. 0: no bound (retention off, or not the edge).
    oldest_start_ns: int = 0


DEFAULT_LIMITS = Limits()


def is_lower_hex(text: str) -> bool:
    # strip() stops at the first character outside the set, so an empty rest means "all hex".
    return bool(text) and not text.strip(_HEX_DIGITS)


def make_resource(attributes: Attributes) -> Resource:
    """A Resource whose ``service_name`` and ``service.name`` attribute always agree.

    A missing, empty or non-string ``service.name`` becomes ``unknown_service`` in both places, so every
    stored span has a service and a re-encoded resource decodes back to the same value.
    """
    service = attributes.get("service.name")
    if not isinstance(service, str) or not service:
        service = UNKNOWN_SERVICE
        attributes["service.name"] = service
    return Resource(attributes=attributes, service_name=service)


def normalize_span(span: Span) -> None:
    """Fix what has one obvious meaning: a span that is its own parent, or a zero parent, is a root."""
    parent = span.parent_span_id
    if parent and (parent == span.span_id or parent == _ZERO_SPAN_ID):
        span.parent_span_id = ""


def _id_problem(name: str, value: str, hex_len: int, zero: str) -> str | None:
    if len(value) == hex_len and is_lower_hex(value):
        return f"{name} is all zeros" if value == zero else None
    if not value or (is_lower_hex(value) and len(value) % 2 == 0):
        return f"{name} must be {hex_len // 2} bytes, got {len(value) // 2}"
    return f"{name} must be {hex_len} lower-case hex characters, got {value!r}"


def check_span(span: Span, where: str) -> Rejection | None:
    """Why ``span`` cannot be stored, or None. Expects ``normalize_span`` to have run."""
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    # One expression for the usual, valid span; the slow path below works out what exactly is wrong.
    if (
        len(trace_id) == TRACE_ID_HEX_LEN
        and len(span_id) == SPAN_ID_HEX_LEN
        and (not parent or len(parent) == SPAN_ID_HEX_LEN)
        and not (trace_id + span_id + parent).strip(_HEX_DIGITS)
        and trace_id != _ZERO_TRACE_ID
        and span_id != _ZERO_SPAN_ID
        and 0 < span.start_ns <= span.end_ns
    ):
        return None
    problem = (
        _id_problem("trace_id", trace_id, TRACE_ID_HEX_LEN, _ZERO_TRACE_ID)
        or _id_problem("span_id", span_id, SPAN_ID_HEX_LEN, _ZERO_SPAN_ID)
        or _parent_problem(parent)
        or _time_problem(span.start_ns, span.end_ns)
    )
    return Rejection(where, problem or "invalid span")


def _parent_problem(parent: str) -> str | None:
    if not parent or (len(parent) == SPAN_ID_HEX_LEN and is_lower_hex(parent)):
        return None
    return _id_problem("parent_span_id", parent, SPAN_ID_HEX_LEN, _ZERO_SPAN_ID)


def _time_problem(start: int, end: int) -> str | None:
    if start <= 0:
        return f"start_time_unix_nano is {start}, the span has no start time"
    if end < start:
        return f"end_time_unix_nano {end} is before start_time_unix_nano {start}"
    return None


def _expired_problem(start_ns: int, oldest_start_ns: int) -> str:
    day, oldest = (datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).date() for ns in (start_ns, oldest_start_ns))
    return (
        f"the span starts on {day} (UTC), before {oldest}, the oldest day kept (TRACESEARCH_RETENTION): "
        "its day is already deleted"
    )


def apply_limits(span: Span, limits: Limits) -> list[str]:
    """Trim ``span`` in place to ``limits``; returns one warning per kind of trimming done.

    Dropped attributes, events and links are added to the span's dropped counters, as an OTel SDK would.
    """
    attributes = span.attributes
    if (
        not span.events
        and not span.links
        and len(attributes) <= limits.max_attributes_per_span
        and _all_short_scalars(attributes, limits.max_attribute_value_bytes // _MAX_UTF8_BYTES_PER_CHAR)
    ):
        return []
    warnings: list[str] = []
    label = f"span {span.span_id}"
    if attributes:
        span.attributes, dropped = _limit(attributes, limits, label, warnings)
        span.dropped_attributes_count += dropped
    if span.events:
        _limit_events(span, limits, label, warnings)
    if span.links:
        _limit_links(span, limits, label, warnings)
    return warnings


def _limit_events(span: Span, limits: Limits, label: str, warnings: list[str]) -> None:
    limit = limits.max_events_per_span
    extra = len(span.events) - limit
    if extra > 0:
        del span.events[limit:]
        span.dropped_events_count += extra
        warnings.append(f"{label}: dropped {extra} events over max_events_per_span={limit}")
    for index, event in enumerate(span.events):
        if event.attributes:
            event.attributes, dropped = _limit(event.attributes, limits, f"{label} event {index}", warnings)
            event.dropped_attributes_count += dropped


def _limit_links(span: Span, limits: Limits, label: str, warnings: list[str]) -> None:
    limit = limits.max_links_per_span
    extra = len(span.links) - limit
    if extra > 0:
        del span.links[limit:]
        span.dropped_links_count += extra
        warnings.append(f"{label}: dropped {extra} links over max_links_per_span={limit}")
    for index, link in enumerate(span.links):
        if link.attributes:
            link.attributes, dropped = _limit(link.attributes, limits, f"{label} link {index}", warnings)
            link.dropped_attributes_count += dropped


def limit_attributes(attributes: Attributes, limits: Limits, owner: str) -> tuple[Attributes, int, list[str]]:
    """Trim one attribute map (of a span, event, link, resource or scope) to ``limits``.

    Returns the map to keep (the same object unless entries were dropped), how many entries were
    dropped, and the warnings, each starting with ``owner``.
    """
    warnings: list[str] = []
    kept, dropped = _limit(attributes, limits, owner, warnings)
    return kept, dropped, warnings


def _limit(attributes: Attributes, limits: Limits, owner: str, warnings: list[str]) -> tuple[Attributes, int]:
    dropped = len(attributes) - limits.max_attributes_per_span
    if dropped > 0:
        attributes = dict(islice(attributes.items(), limits.max_attributes_per_span))
        warnings.append(
            f"{owner}: dropped {dropped} attributes over max_attributes_per_span={limits.max_attributes_per_span}"
        )
    else:
        dropped = 0
    if _all_short_scalars(attributes, limits.max_attribute_value_bytes // _MAX_UTF8_BYTES_PER_CHAR):
        return attributes, dropped
    for key, value in attributes.items():
        trims = _Trims()
        trimmed = _limit_value(value, 1, limits, trims)
        if trimmed is not value:
            # Replacing the value of an existing key does not disturb the iteration.
            attributes[key] = trimmed
            warnings.extend(trims.warnings(owner, key, limits))
    return attributes, dropped


def _all_short_scalars(attributes: Attributes, cheap_len: int) -> bool:
    # The hot path: almost every span has only short scalars, decided here without a call per value.
    for value in attributes.values():
        kind = type(value)
        if kind is str or kind is bytes:
            if len(value) > cheap_len:  # type: ignore[arg-type]
                return False
        elif kind is list:
            # A flat array of short scalars (the common array case) needs no trimming either.
            for item in value:  # type: ignore[union-attr]
                item_kind = type(item)
                if item_kind is list or item_kind is dict:
                    return False
                if (item_kind is str or item_kind is bytes) and len(item) > cheap_len:  # type: ignore[arg-type]
                    return False
        elif kind is dict:
            return False
    return True


@dataclass(slots=True)
class _Trims:
    """What was done to one attribute value, so that it gets one warning per kind, however nested."""

    largest_cut: int = 0
    collapsed: bool = False

    def warnings(self, owner: str, key: str, limits: Limits) -> list[str]:
        found = []
        if self.collapsed:
            found.append(
                f"{owner}: attribute {key!r} is nested deeper than max_nesting_depth="
                f"{limits.max_nesting_depth}; the deeper part is kept as JSON text"
            )
        if self.largest_cut:
            found.append(
                f"{owner}: attribute {key!r} of {self.largest_cut} bytes truncated to "
                f"max_attribute_value_bytes={limits.max_attribute_value_bytes}"
            )
        return found


def _limit_value(value: AttrValue, depth: int, limits: Limits, trims: _Trims) -> AttrValue:
    if isinstance(value, str):
        return _truncate_str(value, limits.max_attribute_value_bytes, trims)
    if isinstance(value, bytes):
        if len(value) <= limits.max_attribute_value_bytes:
            return value
        trims.largest_cut = max(trims.largest_cut, len(value))
        return value[: limits.max_attribute_value_bytes]
    if isinstance(value, list):
        if depth > limits.max_nesting_depth:
            return _collapse(value, limits, trims)
        items = [_limit_value(item, depth + 1, limits, trims) for item in value]
        changed = any(new is not old for new, old in zip(items, value, strict=True))
        return items if changed else value
    if isinstance(value, dict):
        if depth > limits.max_nesting_depth:
            return _collapse(value, limits, trims)
        limited = {k: _limit_value(v, depth + 1, limits, trims) for k, v in value.items()}
        changed = any(limited[k] is not v for k, v in value.items())
        return limited if changed else value
    return value


def _collapse(value: AttrValue, limits: Limits, trims: _Trims) -> str:
    trims.collapsed = True
    return _truncate_str(attribute_json(value), limits.max_attribute_value_bytes, trims)


def _truncate_str(value: str, max_bytes: int, trims: _Trims) -> str:
    if len(value) <= max_bytes // _MAX_UTF8_BYTES_PER_CHAR:
        return value
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return value
    trims.largest_cut = max(trims.largest_cut, len(encoded))
    # "ignore" drops the partial character a byte cut may leave at the end.
    return encoded[:max_bytes].decode("utf-8", "ignore")


def admit(batch: DecodedBatch, span: Span, where: str, limits: Limits) -> None:
    """Normalise, validate and trim one decoded span, then file it as accepted or rejected."""
    normalize_span(span)
    rejection = check_span(span, where)
    if rejection is not None:
        batch.rejected.append(rejection)
        return
    if span.start_ns < limits.oldest_start_ns:
        batch.rejected.append(Rejection(where, _expired_problem(span.start_ns, limits.oldest_start_ns)))
        return
    warnings = apply_limits(span, limits)
    if warnings:
        batch.warnings.extend(warnings)
    batch.spans.append(span)
