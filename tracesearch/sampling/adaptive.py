"""Adaptive head sampling: probabilities per service and root operation, steered to a target rate.

- ``AdaptiveSampling`` is what the strategy provider asks (``probabilities(service)``): every process
  reads the stored output (``SamplingStore.read_state``), cached for an interval.
- ``AdaptiveRunner`` is a background thread in every service process; each interval it tries to take
  or renew the one lease (``SamplingStore.acquire_lease``), and only the holder reads the span metrics,
  computes (``adaptive_math``) and stores the output, with a compare-and-set on the output it read,
  so even two processes that both believe they hold the lease (a paused holder whose lease expired)
  cannot both apply one window.

What is counted: head sampling decides at a trace's root, but the span metrics do not say which spans
were roots. They do say which services take root server spans: the service graph counts a root SERVER
span as a call from ``user``. We count SERVER spans per (service, span name) of those services only, so
services that are only ever called by others (whose own probability no client consults: samplers are
parent-based) get nothing. An operation of such a service that is sometimes a root and sometimes
called from another service is over-counted (its probability comes out lower than it should), and
root spans of another kind (a batch job's INTERNAL root, a Jaeger client's CLIENT root) are not seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from tracesearch.sampling import adaptive_math
from tracesearch.sampling.adaptive_math import AdaptiveConfig, OperationKey
from tracesearch.servicegraph.aggregator import OVERFLOW_LABEL
from tracesearch.servicegraph.model import USER
from tracesearch.storage.contracts import AggregateReader, SamplingState, SamplingStore

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60 * NS_PER_S


def observe(reader: AggregateReader, start_s: float, end_s: float) -> dict[OperationKey, dict[float, int]]:
    """Sampled root traces per minute (by its start, in seconds) per (service, operation) in
    [start_s, end_s), whole minutes."""
    start_ns = int(start_s * NS_PER_S)
    last_ns = int(end_s * NS_PER_S) - NS_PER_MS  # the readers' ranges include their end minute
    roots = {link.child for link in reader.dependencies(start_ns, last_ns) if link.parent == USER}
    if not roots:
        return {}
    series = reader.span_metrics(start_ns, last_ns, NS_PER_MINUTE, {"span_kind": "server"}, ("service", "span_name"))
    counts: dict[OperationKey, dict[float, int]] = {}
    for one in series:
        service, operation = one.labels["service"], one.labels["span_name"]
        if service in roots and operation != OVERFLOW_LABEL:
            per_minute = counts.setdefault((service, operation), {})
            for point in one.points:
                minute = point.time_ns // NS_PER_S
                per_minute[minute] = per_minute.get(minute, 0) + point.calls
    return counts


class AdaptiveSampling:
    """The adaptive source of the strategy provider: the stored probabilities, re-read every interval."""

    def __init__(self, store: SamplingStore, config: AdaptiveConfig, clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._by_service: dict[str, dict[str, float]] = {}
        self._read_at: float | None = None

    def probabilities(self, service: str) -> Mapping[str, float] | None:
        """Per-operation probabilities computed for the service (None: nothing computed for it)."""
        self._refresh_if_stale()
        return self._by_service.get(service)

    def default_probability(self) -> float:
        """For operations not computed yet; what the computation assumes they were sampled at."""
        return self._config.initial_probability

    def lower_bound_tps(self) -> float:
        """The per-operation floor: one trace per operation per interval."""
        return self._config.floor_tps

    def refresh(self) -> None:
        """Re-read the stored output now; an unreachable store keeps what was read last."""
        try:
            state, _ = self._store.read_state()
        except Exception as exc:  # serve the last known probabilities rather than fail a client's poll
            log.warning("adaptive sampling: could not read the stored probabilities: %s", exc)
            with self._lock:  # and try again next interval, not at every poll
                self._read_at = self._clock()
            return
        self.show(state)

    def show(self, state: SamplingState | None) -> None:
        """Serve ``state`` from now on (the runner hands over what it just stored)."""
        by_service: dict[str, dict[str, float]] = {}
        for op in state.operations if state is not None else ():
            by_service.setdefault(op.service, {})[op.operation] = op.probability
        with self._lock:
            self._by_service = by_service
            self._read_at = self._clock()

    def _refresh_if_stale(self) -> None:
        with self._lock:
            fresh = self._read_at is not None and self._clock() - self._read_at < self._config.interval_s
        if not fresh:
            self.refresh()


class AdaptiveRunner:
    """Each interval: take or renew the lease; the holder computes a window not computed yet."""

    def __init__(
        self,
        store: SamplingStore,
        reader: AggregateReader,
        source: AdaptiveSampling,
        config: AdaptiveConfig,
        holder: str,
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._reader = reader
        self._source = source
        self._config = config
        self.holder = holder
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> bool:
        """One interval's work; True when this process computed and stored new probabilities."""
        if not self._store.acquire_lease(self.holder, self._config.lease_ttl_s):
            self._source.refresh()
            return False
        state, version = self._store.read_state()
        now = self._clock()
        start, end = adaptive_math.window(now, self._config)
        if state is not None and end <= state.window_end_s:
            self._source.show(state)  # this window is computed already (by us, or before a takeover)
            return False
        counts = observe(self._reader, start, end)
        previous = state.operations if state is not None else ()
        operations = adaptive_math.compute(previous, counts, end, now, self._config)
        new = SamplingState(window_end_s=end, computed_at_s=now, holder=self.holder, operations=operations)
        if not self._store.write_state(new, version):
            log.info("adaptive sampling: another process stored this window first; keeping its output")
            self._source.refresh()
            return False
        self._source.show(new)
        return True

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="adaptive-sampling", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give the lease up, so another process takes over without waiting."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        try:
            self._store.release_lease(self.holder)
        except Exception as exc:  # exiting anyway: the lease expires by itself
            log.warning("adaptive sampling: could not release the lease: %s", exc)

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception as exc:  # the next interval retries; the service goes on
                log.warning("adaptive sampling: interval failed, retrying in %.0fs: %s", self._config.interval_s, exc)
            if self._stop.wait(self._config.interval_s):
                return
