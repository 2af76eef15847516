"""The per-process service-graph stage: pairing and aggregation under one lock, and a background
thread that expires the wait window, looks missing partners up in storage and flushes aggregates.

Storage comes in through the storage contracts (``SpanLookup``, ``AggregateWriter``) and Prometheus
through a callable, so this module stays pure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tracesearch.model import Span
from tracesearch.servicegraph.aggregator import Aggregator, Snapshot
from tracesearch.servicegraph.pairing import Expired, Pairer
from tracesearch.servicegraph.rollup import ServiceLatency
from tracesearch.storage.contracts import AggregateWriter, SpanLookup

log = logging.getLogger(__name__)
MAX_LOOKUP_REFS = 10_000  # spans looked up per flush at most; beyond, they are given up (and counted)


@dataclass(frozen=True)
class StageConfig:
    wait_s: float = 10.0
    max_pending: int = 100_000
    flush_interval_s: float = 5.0
    max_series: int = 5_000
    max_unwritten: int = 200_000  # aggregates kept in memory while storage is down


@dataclass
class Counters:
    """Deltas since the last flush, for the process's metrics."""

    expired_unpaired: int = 0
    evicted_early: int = 0
    series_overflow: int = 0
    aggregates_dropped: int = 0


class ServiceGraphStage:
    def __init__(
        self,
        config: StageConfig,
        lookup: SpanLookup,
        store: AggregateWriter,
        publish: Callable[[Snapshot, Counters], None],
        process: str,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.monotonic_ns,
    ):
        self.config = config
        self._lookup = lookup
        self._store = store
        self._publish = publish
        self.process = process
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pairer = Pairer(config.wait_s, config.max_pending, clock)
        self._aggregator = Aggregator(config.max_series)
        self._latency = ServiceLatency()
        self._now_ns = now_ns  # when spans were observed, for ServiceLatency's idle and hold times
        self._retry = Expired()
        self._unwritten: list[Snapshot] = []
        self._dropped = 0
        self._reported = Counters()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(self, spans: Sequence[Span]) -> None:
        """Feed newly stored spans (never duplicates: they were counted when first stored)."""
        if not spans:
            return
        with self._lock:
            added = self._pairer.add(spans)
            self._aggregator.add_spans(added.fresh)
            self._aggregator.add_calls(added.calls)
            self._latency.add(added.fresh, self._now_ns())
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="servicegraph-flush", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.config.flush_interval_s):
            try:
                self.flush()
            except Exception:  # the thread must outlive any bug or outage; the next flush tries again
                log.exception("service graph flush failed")

    def flush(self, everything: bool = False) -> None:
        """Expire the window (all of it at shutdown), pair with storage, write the aggregates."""
        with self._flush_lock:
            with self._lock:
                expired = self._pairer.expire(everything)
            self._resolve(expired, final=everything)
            with self._lock:
                snapshot = self._aggregator.drain()
                snapshot.latency = self._latency.drain(self._now_ns(), everything)
                counters = self._counters()
            self._publish(snapshot, counters)
            if snapshot:
                self._unwritten.append(snapshot)
            self._write_unwritten()

    def _resolve(self, expired: Expired, final: bool) -> None:
        retried, self._retry = self._retry, Expired()
        retried.extend(expired)  # oldest first, so that trimming lets the oldest go
        expired = retried
        if not expired:
            return
        given_up = self._trim(expired)
        try:
            parents = self._lookup.parents(expired.parent_refs()) if expired.orphans else {}
            served = self._lookup.served(expired.client_refs()) if expired.clients else set()
        except Exception as exc:  # storage away: try again next flush, unless we are stopping
            log.warning("service graph lookup failed (%s); %d spans wait for the next flush", exc, len(expired.orphans))
            if not final:
                self._retry = expired
            return
        with self._lock:
            self._pairer.expired_unpaired += given_up
            self._aggregator.add_calls(self._pairer.resolve(expired, parents, served))

    @staticmethod
    def _trim(expired: Expired) -> int:
        """Bound one lookup; the orphans left out are counted as expired unpaired."""
        over = len(expired.orphans) - MAX_LOOKUP_REFS
        if over > 0:
            del expired.orphans[:over]
        del expired.clients[: max(0, len(expired.clients) - MAX_LOOKUP_REFS)]
        return max(0, over)

    def _write_unwritten(self) -> None:
        while self._unwritten:
            try:
                self._store.write(self._unwritten[0], self.process)
            except Exception as exc:
                log.warning("service graph aggregates not stored (%s); %d flushes kept", exc, len(self._unwritten))
                self._bound_unwritten()
                return
            self._unwritten.pop(0)

    def _bound_unwritten(self) -> None:
        while sum(len(s) for s in self._unwritten) > self.config.max_unwritten and len(self._unwritten) > 1:
            self._dropped += len(self._unwritten.pop(0))

    def _counters(self) -> Counters:
        """Deltas of the cumulative counters since the last call (under the lock)."""
        now = Counters(
            self._pairer.expired_unpaired,
            self._pairer.evicted_early,
            self._aggregator.span_cap.overflowed + self._aggregator.edge_cap.overflowed,
            self._dropped,
        )
        before, self._reported = self._reported, now
        return Counters(
            now.expired_unpaired - before.expired_unpaired,
            now.evicted_early - before.evicted_early,
            now.series_overflow - before.series_overflow,
            now.aggregates_dropped - before.aggregates_dropped,
        )

    def pending(self) -> int:
        with self._lock:
            return len(self._pairer)

    def close(self) -> None:
        """Stop the thread, then pair and flush everything still held (process exit)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.flush_interval_s + 30)
        try:
            self.flush(everything=True)
        except Exception:  # exiting anyway: say what was lost rather than fail the shutdown
            log.exception("service graph: final flush failed, %d flushes not stored", len(self._unwritten))
