"""Each operation's observed latency percentile, from the span metrics tracesearch already writes.

The ``latency_percentile`` policy keeps a trace with a span slower than what is usual for its service
and span name (its p99 over the last hour, say), so "slow" needs no threshold per operation.
The figures are read from the per-minute span metrics every ``refresh_s`` (in the deciding thread,
one aggregation for all operations) and kept when storage is away. Each tenant's from its own span
metrics (``TenantPercentiles``): one tenant's traffic sets no other tenant's thresholds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from tracesearch.servicegraph.histogram import BOUNDS, quantile
from tracesearch.storage.contracts import AggregateReader, MetricsPoint, StorageError

log = logging.getLogger(__name__)
NS_PER_S = 1_000_000_000
Operation = tuple[str, str]  # (service, span name)
ReaderOf = Callable[[str | None], AggregateReader]  # a tenant's span metrics (None: the default tenant's)


class OperationPercentiles:
    def __init__(
        self,
        reader: AggregateReader,
        *,
        window_s: float = 3600.0,
        refresh_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self._reader, self._window_s, self._refresh_s, self._clock = reader, window_s, refresh_s, clock
        self._counts: dict[Operation, MetricsPoint] = {}
        self._read_at = -math.inf
        self._cache: dict[tuple[Operation, float, int], int | None] = {}

    def threshold_ns(self, operation: Operation, q: float, min_calls: int) -> int | None:
        """The q-quantile of the operation's durations in ns; None with fewer than ``min_calls`` calls."""
        self._refresh()
        key = (operation, q, min_calls)
        if key not in self._cache:
            point = self._counts.get(operation)
            if point is None or point.calls < min_calls:
                self._cache[key] = None
            else:
                self._cache[key] = int(quantile(point.bucket_counts, BOUNDS, q) * NS_PER_S)
        return self._cache[key]

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._read_at < self._refresh_s:
            return
        self._read_at = now
        end_ns = int(now * NS_PER_S)
        start_ns = end_ns - int(self._window_s * NS_PER_S)
        try:
            # One step longer than the window: a single point per operation.
            step_ns = end_ns - start_ns + 60 * NS_PER_S
            series = self._reader.span_metrics(start_ns, end_ns, step_ns, by=("service", "span_name"))
        except StorageError as exc:  # keep deciding on the last figures
            log.warning("span metrics unavailable, latency percentiles kept from the last read: %s", exc)
            return
        counts: dict[Operation, MetricsPoint] = {}
        for one in series:
            total = MetricsPoint(0)
            for point in one.points:
                total.merge(point)
            counts[(one.labels["service"], one.labels["span_name"])] = total
        self._counts, self._cache = counts, {}


class TenantPercentiles:
    """The ``latency_percentile`` policy's source: each tenant's operations judged against that
    tenant's own span metrics, read (and cached) apart on first use."""

    def __init__(self, reader_of: ReaderOf, **options: Any):
        self._reader_of = reader_of
        self._options = options
        self._by_tenant: dict[str | None, OperationPercentiles] = {}

    def threshold_ns(self, operation: Operation, q: float, min_calls: int, tenant: str | None = None) -> int | None:
        source = self._by_tenant.get(tenant)
        if source is None:
            source = self._by_tenant[tenant] = OperationPercentiles(self._reader_of(tenant), **self._options)
        return source.threshold_ns(operation, q, min_calls)
