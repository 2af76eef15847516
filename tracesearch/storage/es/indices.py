"""Index names: daily span indices named from the span start time, always in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

NS_PER_S = 1_000_000_000
SPAN_INDEX_INFIX = "-span-"


def span_index_for(prefix: str, start_ns: int) -> str:
    """The daily index a span belongs to (``tracesearch-span-2026-11-22``)."""
    day = datetime.fromtimestamp(start_ns // NS_PER_S, tz=UTC).date()
    return f"{prefix}{SPAN_INDEX_INFIX}{day.isoformat()}"


def span_indices_between(prefix: str, start_ns: int, end_ns: int) -> list[str]:
    """Every daily index that can hold spans starting in [start_ns, end_ns], oldest first.

    The list is bounded by the range; callers cap the range (a lookback setting) so that a query
    never names an unbounded number of indices.
    """
    if end_ns < start_ns:
        start_ns, end_ns = end_ns, start_ns
    first = _utc_day(start_ns)
    last = _utc_day(end_ns)
    days = (last - first).days
    return [f"{prefix}{SPAN_INDEX_INFIX}{(first + timedelta(days=i)).isoformat()}" for i in range(days + 1)]


def span_index_pattern(prefix: str) -> str:
    return f"{prefix}{SPAN_INDEX_INFIX}*"


def _utc_day(ns: int) -> date:
    return datetime.fromtimestamp(ns // NS_PER_S, tz=UTC).date()
