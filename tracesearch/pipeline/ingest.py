"""The ingest service: decoded batch in, durable spans out, every refusal accounted for."""

from __future__ import annotations

from dataclasses import dataclass, field

import elasticsearch

from tracesearch import metrics
from tracesearch.errors import Overloaded, Unavailable
from tracesearch.model import DecodedBatch, Rejection
from tracesearch.pipeline.sink import BrokerUnavailable, SinkOverloaded
from tracesearch.runtime import Runtime
from tracesearch.storage.base import StorageUnavailable


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


def ingest(runtime: Runtime, batch: DecodedBatch, transport: str) -> IngestOutcome:
    """Make the valid spans of a batch durable; raise ``Unavailable``/``Overloaded`` when nothing
    can be promised (the client retries the whole batch; writes are idempotent)."""
    metrics.SPANS_RECEIVED.labels(transport).inc(len(batch.spans) + len(batch.rejected))
    if batch.rejected:
        metrics.SPANS_REJECTED.labels(transport, "decode").inc(len(batch.rejected))
    outcome = IngestOutcome(rejected=list(batch.rejected), warnings=list(batch.warnings))
    if not batch.spans:
        return outcome
    retry_after = runtime.settings.retry_after_s
    try:
        if runtime.settings.pipeline == "direct":
            runtime.ensure_templates()
        result = runtime.sink.submit(batch.spans, batch.per_trace)
    except SinkOverloaded as exc:
        raise Overloaded(f"too much in flight, retry later: {exc}", retry_after_s=retry_after) from exc
    except (StorageUnavailable, BrokerUnavailable, elasticsearch.TransportError, elasticsearch.ApiError) as exc:
        raise Unavailable(f"spans not stored, retry later: {exc}", retry_after_s=retry_after) from exc
    if result.rejected:
        metrics.SPANS_REJECTED.labels(transport, "storage").inc(len(result.rejected))
    outcome.accepted = result.accepted
    outcome.rejected.extend(result.rejected)
    return outcome
