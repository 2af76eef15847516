"""Index names: daily span indices named from the span start time, always in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
MAX_NS = 2**63 - 1  # 2262-04-11: what a nanosecond long holds; a bigger time names no index


def utc_day(ns: int) -> date:
    """The UTC day of a time, clamped to [1970, 2262] so that any number a client sends names a day."""
    return datetime.fromtimestamp(min(max(ns, 0), MAX_NS) // NS_PER_S, tz=UTC).date()


SPAN_INDEX_INFIX = "-span-"


def span_index_for(prefix: str, start_ns: int) -> str:
    """The daily index a span belongs to (``tracesearch-span-2026-11-22``): the same for every time
    with the same ``min(max(ns, 0), MAX_NS) // NS_PER_DAY`` (UTC days have no leap seconds here)."""
    return f"{prefix}{SPAN_INDEX_INFIX}{utc_day(start_ns).isoformat()}"


def span_indices_between(prefix: str, start_ns: int, end_ns: int) -> list[str]:
    """Every daily index that can hold spans starting in [start_ns, end_ns], oldest first.

    The list is bounded by the range; callers cap the range (a lookback setting) so that a query
    never names an unbounded number of indices.
    """
    if end_ns < start_ns:
        start_ns, end_ns = end_ns, start_ns
    first = utc_day(start_ns)
    last = utc_day(end_ns)
    days = (last - first).days
    return [f"{prefix}{SPAN_INDEX_INFIX}{(first + timedelta(days=i)).isoformat()}" for i in range(days + 1)]


def span_index_pattern(prefix: str) -> str:
    return f"{prefix}{SPAN_INDEX_INFIX}*"
