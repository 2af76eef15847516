"""The receiving side: a decoded batch in, durable spans out, every refusal accounted for."""

from __future__ import annotations

from dataclasses import dataclass, field

from tracesearch import prometheus
from tracesearch.model import DecodedBatch, Rejection
from tracesearch.pipeline.sink import SpanSink


@dataclass(slots=True)
class IngestOutcome:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self, limit: int = 5) -> str:
        """One human-readable line for partialSuccess / error bodies; the first few reasons in full."""
        parts = [f"{r.where}: {r.reason}" for r in self.rejected[:limit]]
        if len(self.rejected) > limit:
            parts.append(f"... and {len(self.rejected) - limit} more rejected")
        parts.extend(self.warnings[:limit])
        return "; ".join(parts)


def receive(sink: SpanSink, batch: DecodedBatch, transport: str) -> IngestOutcome:
    """Make the valid spans of a batch durable. Raises what the sink raises when nothing can be
    promised (``StorageUnavailable``, ``BrokerUnavailable``, ``SinkOverloaded``): the client retries
    the whole batch; writes are idempotent."""
    prometheus.SPANS_RECEIVED.labels(transport).inc(batch.accepted + len(batch.rejected))
    if batch.rejected:
        prometheus.SPANS_REJECTED.labels(transport, "decode").inc(len(batch.rejected))
    outcome = IngestOutcome(rejected=list(batch.rejected), warnings=list(batch.warnings))
    if not batch.accepted:
        return outcome
    result = sink.submit(batch.spans, batch.per_trace)
    if result.rejected:
        prometheus.SPANS_REJECTED.labels(transport, "storage").inc(len(result.rejected))
    outcome.accepted = result.accepted
    outcome.rejected.extend(result.rejected)
    return outcome
