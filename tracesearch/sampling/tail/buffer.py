"""The traces waiting for a decision, and the decisions remembered for late spans.

Memory is accounted explicitly: spans held and bytes held, where a span's bytes are its share of the
encoded Kafka message it came in (the bench measures what a buffered span costs in Python objects:
see BENCHMARKS.md). Over either bound the traces longest without a new span are taken out early.

A trace is a tenant's trace id (``TraceKey``): two tenants sending the same trace id have two traces,
each decided on its own spans, so one tenant's spans can neither join nor sway another's trace.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from tracesearch.model import Span
from tracesearch.sampling.tail.offsets import Position
from tracesearch.sampling.tail.policies import Decision

TraceKey = tuple[str | None, str]  # (tenant, None for the default one; trace id)


@dataclass(slots=True)
class PendingTrace:
    trace_id: str
    last_seen: float
    spans: list[Span] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    size: int = 0
    tenant: str | None = None


class TraceBuffer:
    """Traces in order of their last span's arrival: the quiet ones are at the front."""

    def __init__(self, wait_s: float, max_spans: int, max_bytes: int):
        self.wait_s = wait_s
        self.max_spans = max_spans
        self.max_bytes = max_bytes
        self._traces: OrderedDict[TraceKey, PendingTrace] = OrderedDict()
        self.spans = 0
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._traces)

    def add(
        self, trace_id: str, spans: list[Span], position: Position, size: int, now: float, tenant: str | None = None
    ) -> None:
        key = (tenant, trace_id)
        trace = self._traces.get(key)
        if trace is None:
            trace = self._traces[key] = PendingTrace(trace_id, now, tenant=tenant)
        else:
            trace.last_seen = now
            self._traces.move_to_end(key)
        trace.spans.extend(spans)
        trace.positions.append(position)
        trace.size += size
        self.spans += len(spans)
        self.bytes += size

    def due(self, now: float) -> list[PendingTrace]:
        """The traces quiet for the wait, oldest first."""
        out: list[PendingTrace] = []
        cutoff = now - self.wait_s
        while self._traces:
            first = next(iter(self._traces.values()))
            if first.last_seen > cutoff:
                break
            out.append(self._pop())
        return out

    def over_bounds(self) -> list[PendingTrace]:
        """The oldest traces that must go now for the buffer to fit its bounds."""
        out: list[PendingTrace] = []
        while self._traces and (self.spans > self.max_spans or self.bytes > self.max_bytes):
            out.append(self._pop())
        return out

    def clear(self) -> int:
        """Forget every trace (a rebalance: their records are read again); returns how many."""
        dropped = len(self._traces)
        self._traces.clear()
        self.spans = self.bytes = 0
        return dropped

    def _pop(self) -> PendingTrace:
        _, trace = self._traces.popitem(last=False)
        self.spans -= len(trace.spans)
        self.bytes -= trace.size
        return trace


class DecisionCache:
    """The latest decisions, so that spans arriving after their trace was decided follow it."""

    def __init__(self, size: int):
        self.size = size
        self._decisions: OrderedDict[TraceKey, Decision] = OrderedDict()

    def get(self, trace_id: str, tenant: str | None = None) -> Decision | None:
        return self._decisions.get((tenant, trace_id))

    def put(self, trace_id: str, decision: Decision, tenant: str | None = None) -> None:
        key = (tenant, trace_id)
        self._decisions[key] = decision
        self._decisions.move_to_end(key)
        if len(self._decisions) > self.size:
            self._decisions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._decisions)
