"""One consumed batch's spans, written tenant by tenant, each to its tenant's store pipeline.

The Kafka ingester commits a batch only once every tenant's spans in it are stored. When storage fails
part way (one tenant's spans stored, the next one's write unavailable), a retry writes only the tenants
not stored yet: the stored ones are not written again (their 409s would cost a bulk for nothing).
"""

from __future__ import annotations

from collections.abc import Callable

from tracesearch.model import Span
from tracesearch.pipeline.store import StorePipeline
from tracesearch.storage.contracts import RejectedSpan, WriteResult

Tenant = str | None
PipelineOf = Callable[[Tenant], StorePipeline]


class TenantWrites:
    def __init__(self, groups: dict[Tenant, list[Span]], pipeline_of: PipelineOf):
        self._pending = {tenant: spans for tenant, spans in groups.items() if spans}
        self._pipeline_of = pipeline_of
        self.result = WriteResult()
        self.rejected: list[tuple[Tenant, RejectedSpan]] = []  # with the tenant, for the dead-letter topic

    def store(self) -> TenantWrites:
        """Write what is not stored yet, tenant by tenant; raises ``StorageUnavailable`` (what was
        stored before stays stored, and is not written again by the next call)."""
        for tenant in list(self._pending):
            written = self._pipeline_of(tenant).store(self._pending[tenant])
            del self._pending[tenant]
            self.rejected.extend((tenant, item) for item in written.rejected)
            self.result.add(written)
        return self
