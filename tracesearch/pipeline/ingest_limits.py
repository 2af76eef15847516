"""A tenant's ingest limits in one process: spans per request, and spans per second as a token bucket.

The bucket holds up to ``burst`` spans and fills at ``rate`` spans per second; a request takes as many
tokens as it holds spans, or none: a refused request waits, whole, for ``retry_after_s``, the time until
the bucket holds its spans (what an OTLP exporter honours before retrying). A request of more spans
than the bucket ever holds could never pass, so it is refused for good (413), not asked to wait forever.

Each process (gunicorn worker) has its own bucket per tenant: no coordination on the ingest path, and an
instance admits its worker count times the rate (the README says so).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Reasons of tracesearch_ingest_refused_spans_total.
RATE = "rate"
REQUEST_SPANS = "request_spans"
BURST = "burst"


class RateLimited(Exception):
    """The tenant's spans per second are spent; the request may pass after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManySpans(Exception):
    """The request holds more spans than one request may (or than the bucket ever holds): never retry it
    as it is; ``reason`` names the limit (``REQUEST_SPANS`` or ``BURST``)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class TokenBucket:
    """``rate`` tokens a second, up to ``burst``; starts full. Thread-safe."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst <= 0:
            raise ValueError("a token bucket needs a positive rate and burst")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, count: float) -> float:
        """Take ``count`` tokens and return 0, or take none and return the seconds until there are
        ``count`` (``count`` over ``burst``: infinity)."""
        if count > self.burst:
            return math.inf
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= count:
                self._tokens -= count
                return 0.0
            return (count - self._tokens) / self.rate


@dataclass(frozen=True)
class IngestConfig:
    spans_per_second: float = 0.0  # 0: no rate limit
    burst_spans: int = 0  # 0: one second of the rate
    max_spans_per_request: int = 0  # 0: no limit

    @property
    def burst(self) -> int:
        return self.burst_spans or max(1, math.ceil(self.spans_per_second))


class IngestLimiter:
    """One tenant's limits in this process; ``admit`` before a request's spans go to the sink."""

    def __init__(
        self,
        config: IngestConfig,
        tenant: str | None,
        on_refused: Callable[[str, int], None] = lambda reason, count: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self._tenant = tenant or "the default tenant"
        self._on_refused = on_refused
        rate = config.spans_per_second
        self._bucket = TokenBucket(rate, config.burst, clock) if rate > 0 else None

    def admit(self, spans: int) -> None:
        """Let ``spans`` in, or raise ``TooManySpans`` (never passes) or ``RateLimited`` (later)."""
        limit = self.config.max_spans_per_request
        if limit and spans > limit:
            self._refuse(REQUEST_SPANS, spans)
            raise TooManySpans(
                f"{spans} spans in one request, more than {limit} (TRACESEARCH_MAX_SPANS_PER_REQUEST of "
                f"{self._tenant}): send smaller batches",
                REQUEST_SPANS,
            )
        if self._bucket is None or spans == 0:
            return
        wait_s = self._bucket.take(spans)
        if wait_s == 0:
            return
        if math.isinf(wait_s):
            self._refuse(BURST, spans)
            raise TooManySpans(
                f"{spans} spans in one request, more than the {self._bucket.burst:.0f} a request may hold under "
                f"{self._tenant}'s rate (TRACESEARCH_INGEST_BURST_SPANS): send smaller batches",
                BURST,
            )
        self._refuse(RATE, spans)
        raise RateLimited(
            f"{self._tenant} sends more than {self.config.spans_per_second:g} spans per second "
            "(TRACESEARCH_INGEST_SPANS_PER_SECOND, per process): retry later",
            retry_after_s=max(1, math.ceil(wait_s)),
        )

    def _refuse(self, reason: str, spans: int) -> None:
        self._on_refused(reason, spans)
