"""What one query may cost: the limits every read API applies, in one place.

``QueryLimits`` holds the limits an operator sets (``TRACESEARCH_QUERY_TIMEOUT`` and the others,
service-wide today; built per tenant once tenants exist). The fixed bounds below them protect the
parser and the planner and are the same for everyone. docs/search.md has the table of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tracesearch.settings import Settings

# Fixed bounds on the query text, checked before any storage call.
MAX_TRACEQL_LENGTH: Final = 16_384  # characters of a TraceQL query (q)
MAX_TRACEQL_CONDITIONS: Final = 512  # comparisons in one TraceQL query
MAX_JAEGER_TAGS_BYTES: Final = 16_384  # the Jaeger `tags` JSON parameter
MAX_JAEGER_TAGS: Final = 64  # key=value pairs of `tags`


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Per-query limits; the defaults are the settings' defaults."""

    timeout_s: float = 10.0  # time budget of one query; past it the answer says it is partial
    max_concurrent: int = 4  # queries running at once in one process; more wait briefly, then 429
    max_range_s: float = 30 * 86400.0  # longest search time range (start..end); longer: 400
    max_traces: int = 1_500  # traces per search; a larger `limit` is cut to it
    # Spans of one trace an answer holds: the earliest; a runaway trace is cut and the answer says so.
    max_spans_per_trace: int = 50_000

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLimits:
        return cls(
            timeout_s=settings.query_timeout_s,
            max_concurrent=settings.max_concurrent_queries,
            max_range_s=settings.query_max_range_s,
            max_traces=settings.query_max_traces,
            max_spans_per_trace=settings.query_max_spans_per_trace,
        )

    @property
    def queue_wait_s(self) -> float:
        """How long a query over ``max_concurrent`` waits for a slot before the 429."""
        return min(1.0, self.timeout_s)
