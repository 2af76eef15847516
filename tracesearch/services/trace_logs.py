"""The log lines of a trace: the trace's own time span, widened by a margin, searched in the logs.

The window comes from the trace as stored: its first span's start to its last span's end, each moved
out by ``TRACESEARCH_LOGS_TIME_MARGIN`` as Grafana's trace-to-logs link shifts its span window. The end is
bounded without reading the spans (``SpanReader.trace_extent``: the last start plus the longest
duration, never before the true end, and never more than the longest duration after it). Logs
can exist without stored spans (a trace sampled out, spans not sent yet, or expired): then the window
is the one asked for, else the trace-by-id lookback (``TRACESEARCH_TRACE_LOOKBACK``). The answer says
which of the three it used.

A tenant's service (``stored_only``) answers only for traces stored in the tenant's own spans: for any
other id it answers as for a trace without log lines, without searching the logs, so that a tenant
cannot read another's log lines by guessing or learning their trace id (the logs indices are shared
unless a tenant's settings name its own). The default tenant keeps the logs of traces not stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tracesearch.storage.contracts import LogReader, SpanReader

NS_PER_S = 1_000_000_000
Window = Literal["trace", "request", "lookback"]


def _now_ns() -> int:
    # Looked up at each call, not bound as a default argument: a test (or the goldens) may freeze time.
    return time.time_ns()


@dataclass(frozen=True, slots=True)
class TraceLogs:
    trace_id: str
    index: str
    field: str
    start_ns: int
    end_ns: int
    window: Window  # trace: around its stored spans; request: start/end asked for; lookback: the default
    lines: list[dict[str, Any]]
    truncated: bool


class TraceLogsService:
    def __init__(
        self,
        spans: SpanReader,
        logs: LogReader,
        margin_s: float,
        lookback_s: float,
        clock: Callable[[], int] = _now_ns,
        *,
        stored_only: bool = False,
    ):
        self._spans = spans
        self._stored_only = stored_only
        self._logs = logs
        self._margin_ns = int(margin_s * NS_PER_S)
        self._lookback_ns = int(lookback_s * NS_PER_S)
        self._clock = clock

    def logs(self, trace_id: str, start_ns: int | None, end_ns: int | None, limit: int) -> TraceLogs:
        """Lines of ``trace_id`` (canonical: 32 lowercase hex digits), oldest first, at most ``limit``;
        ``start_ns``/``end_ns`` narrow the trace's lookup and bound the search when it is not stored."""
        start, end, window = self._window(trace_id, start_ns, end_ns)
        if window != "trace" and self._stored_only:
            return TraceLogs(trace_id, self._logs.index, self._logs.field, start, end, window, [], False)
        found = self._logs.trace_logs(trace_id, start, end, limit)
        return TraceLogs(trace_id, self._logs.index, self._logs.field, start, end, window, found.lines, found.truncated)

    def _window(self, trace_id: str, start_ns: int | None, end_ns: int | None) -> tuple[int, int, Window]:
        extent = self._spans.trace_extent(trace_id, start_ns, end_ns)
        if extent is not None:
            return self._around(*extent)
        if start_ns is None and end_ns is None:
            now = self._clock()
            return now - self._lookback_ns, now, "lookback"
        end = end_ns if end_ns is not None else self._clock()
        start = start_ns if start_ns is not None else end - self._lookback_ns
        return start, end, "request"

    def _around(self, first: int, last: int) -> tuple[int, int, Window]:
        return max(first - self._margin_ns, 0), last + self._margin_ns, "trace"
