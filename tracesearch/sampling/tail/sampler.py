"""The tail sampler of one ingester: records in, decided spans out, and what may be committed.

The ingester offers each consumed record's spans (with the record's partition and offset) and asks
now and then for the decisions that are due. Kept spans carry ``sampling.policy`` and are written;
their records are done once the write is acknowledged (``stored``). Dropped spans are done at once
and handed back so that the service graph and span metrics still count them. Spans of a trace decided
already (in the bounded decision cache) follow that decision at once.

Each record is offered with its tenant: traces are kept apart by (tenant, trace id) in the buffer and
the decision cache, and what comes out (kept and dropped spans) is grouped by tenant, to be written to
and counted in that tenant's store pipeline.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tracesearch.model import Span
from tracesearch.sampling.tail.buffer import DecisionCache, PendingTrace, TraceBuffer
from tracesearch.sampling.tail.offsets import OffsetTracker, Position
from tracesearch.sampling.tail.policies import POLICY_ATTRIBUTE, Decider, Decision, Trace


class TailMetrics(Protocol):
    def decided(self, label: str, traces: int, spans: int, early: bool) -> None:
        """``label``: the keeping policy's name, or ``dropped``; ``early``: taken out over the bounds."""

    def late(self, label: str, spans: int) -> None: ...

    def buffered(self, traces: int, spans: int, size: int) -> None: ...


class NoMetrics:
    def decided(self, label: str, traces: int, spans: int, early: bool) -> None:
        pass

    def late(self, label: str, spans: int) -> None:
        pass

    def buffered(self, traces: int, spans: int, size: int) -> None:
        pass


Tenant = str | None


@dataclass(slots=True)
class Output:
    kept_by_tenant: dict[Tenant, list[Span]] = field(default_factory=dict)  # to write, marked with the policy
    kept_positions: list[Position] = field(default_factory=list)  # done once ``kept`` is stored
    dropped_by_tenant: dict[Tenant, list[Span]] = field(default_factory=dict)  # not stored, still counted

    @property
    def kept(self) -> list[Span]:
        return [span for spans in self.kept_by_tenant.values() for span in spans]

    @property
    def dropped(self) -> list[Span]:
        return [span for spans in self.dropped_by_tenant.values() for span in spans]


class TailSampler:
    def __init__(
        self,
        decider: Decider,
        buffer: TraceBuffer,
        cache: DecisionCache,
        metrics: TailMetrics | None = None,
    ):
        self.decider = decider
        self.buffer = buffer
        self.cache = cache
        self.tracker = OffsetTracker()
        self.metrics: TailMetrics = metrics or NoMetrics()
        # Dropped records fed to the observers and not committed yet: a rebalance reads them again,
        # and this process must not count them twice (a crash forgets this; see the README).
        self._fed: dict[Hashable, set[int]] = {}

    def offer(
        self, position: Position, spans: Sequence[Span], size: int, now: float, out: Output, tenant: Tenant = None
    ) -> None:
        """One consumed record of ``tenant``: its spans wait in the buffer, or follow their trace's decision."""
        groups: dict[str, list[Span]] = {}
        for span in spans:
            groups.setdefault(span.trace_id, []).append(span)
        self.tracker.read(position, holds=len(groups))
        for trace_id, group in groups.items():
            decision = self.cache.get(trace_id, tenant)
            if decision is None:
                self.buffer.add(trace_id, group, position, size * len(group) // max(1, len(spans)), now, tenant)
            else:
                self._late(decision, group, position, out, tenant)
        for trace in self.buffer.over_bounds():
            self._decide(trace, out, early=True)

    def decide_due(self, now: float, out: Output) -> None:
        for trace in self.buffer.due(now):
            self._decide(trace, out, early=False)
        self.metrics.buffered(len(self.buffer), self.buffer.spans, self.buffer.bytes)

    def stored(self, positions: Iterable[Position]) -> None:
        """The kept spans of these records are stored."""
        for position in positions:
            self.tracker.release(position)

    def commit_points(self) -> dict[Hashable, int]:
        points = self.tracker.commit_points()
        for partition, point in points.items():
            fed = self._fed.get(partition)
            if fed:
                fed.difference_update([o for o in fed if o < point])
        return points

    def reset(self) -> int:
        """Forget what waits and what was read (a rebalance: it is all read again); the decision cache
        stays, so spans read again follow the decisions already made. Returns the traces forgotten."""
        self.tracker.clear()
        forgotten = self.buffer.clear()
        self.metrics.buffered(0, 0, 0)
        return forgotten

    def _decide(self, pending: PendingTrace, out: Output, early: bool) -> None:
        decision = self.decider.decide(Trace(pending.trace_id, pending.spans, pending.tenant))
        self.cache.put(pending.trace_id, decision, pending.tenant)
        self.metrics.decided(decision.label, 1, len(pending.spans), early)
        if decision.keep:
            _mark(pending.spans, decision)
            out.kept_by_tenant.setdefault(pending.tenant, []).extend(pending.spans)
            out.kept_positions.extend(pending.positions)
            return
        for position in pending.positions:
            self.tracker.release(position)
        self._feed_dropped(pending.spans, pending.positions, out, pending.tenant)

    def _late(self, decision: Decision, spans: list[Span], position: Position, out: Output, tenant: Tenant) -> None:
        self.metrics.late(decision.label, len(spans))
        if decision.keep:
            _mark(spans, decision)
            out.kept_by_tenant.setdefault(tenant, []).extend(spans)
            out.kept_positions.append(position)
            return
        self.tracker.release(position)
        self._feed_dropped(spans, [position], out, tenant)

    def _feed_dropped(self, spans: list[Span], positions: list[Position], out: Output, tenant: Tenant) -> None:
        fresh = False
        for partition, offset in positions:
            fed = self._fed.setdefault(partition, set())
            if offset not in fed:
                fed.add(offset)
                fresh = True
        if fresh:
            out.dropped_by_tenant.setdefault(tenant, []).extend(spans)


def _mark(spans: list[Span], decision: Decision) -> None:
    for span in spans:
        span.attributes[POLICY_ATTRIBUTE] = decision.policy
