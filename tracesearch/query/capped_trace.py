"""A trace as the read APIs answer it: at most ``QueryLimits.max_spans_per_trace`` spans, the earliest,
and whether the trace had more (a runaway trace, cut so that it cannot exhaust a worker)."""

from __future__ import annotations

from dataclasses import dataclass

from tracesearch.model import Span, short_trace_id

# What ``X-Tracesearch-Partial`` says of an answer holding a cut trace (beside "time budget"...).
SPANS_PER_TRACE = "spans per trace"


@dataclass(frozen=True, slots=True)
class CappedTrace:
    spans: list[Span]  # sorted by start; [] when the trace is unknown
    cap: int  # the spans-per-trace limit it was read under
    truncated: bool = False  # the trace has more spans: these are its first ``cap`` by start time

    @property
    def trace_id(self) -> str:
        """The id as Jaeger and Zipkin print it (16 digits when the high half is zero); "" when unknown."""
        return short_trace_id(self.spans[0].trace_id) if self.spans else ""

    @property
    def message(self) -> str:
        """What every API says of a cut trace, naming it and the cap."""
        return (
            f"partial trace: trace {self.trace_id} has more than {self.cap} spans, the most one answer holds "
            f"(TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE); these are its first {self.cap} by start time"
        )


def capped(spans: list[Span], cap: int) -> CappedTrace:
    """A trace read with ``max_spans=cap + 1``: one span over the cap says the trace was cut."""
    if len(spans) > cap:
        return CappedTrace(spans[:cap], cap, truncated=True)
    return CappedTrace(spans, cap)

