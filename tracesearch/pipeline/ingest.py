"""The ingest service: decoded batch in, durable spans out, every refusal accounted for."""

from __future__ import annotations

from dataclasses import dataclass, field

import elasticsearch

from tracesearch.errors import Unavailable
from tracesearch.model import DecodedBatch, Rejection
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


def ingest(runtime: Runtime, batch: DecodedBatch) -> IngestOutcome:
    """Store the valid spans of a batch; raise ``Unavailable`` when nothing can be promised."""
    outcome = IngestOutcome(rejected=list(batch.rejected), warnings=list(batch.warnings))
    if not batch.spans:
        return outcome
    try:
        runtime.ensure_templates()
        result = runtime.sink.submit(batch.spans)
    except (StorageUnavailable, elasticsearch.TransportError, elasticsearch.ApiError) as exc:
        raise Unavailable(
            f"spans not stored, retry later: {exc}", retry_after_s=runtime.settings.retry_after_s
        ) from exc
    outcome.accepted = result.accepted
    outcome.rejected.extend(result.rejected)
    return outcome
