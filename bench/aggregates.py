"""The service-graph stage run over the query data set as it is loaded, so the service map and span
metrics of the data set exist as they would had the spans come through the service."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from elasticsearch import Elasticsearch

from tracesearch.model import Span
from tracesearch.servicegraph.aggregator import Snapshot
from tracesearch.servicegraph.model import ParentInfo, SpanRef
from tracesearch.servicegraph.stage import Counters, ServiceGraphStage, StageConfig
from tracesearch.storage.es.aggregate_writer import EsAggregateWriter


class _NothingStored:
    """Spans of a trace are generated together, so a parent is always seen in memory."""

    def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
        return {}

    def served(self, refs: Sequence[SpanRef]) -> set[tuple[str, str]]:
        return set()


def _publish(snapshot: Snapshot, counters: Counters) -> None:
    """The bench has no /metrics to publish to."""


# A long window: the whole data set is generated in minutes, flushed once at the end.
ONE_FLUSH = StageConfig(wait_s=3600.0, max_pending=2_000_000, flush_interval_s=3600.0, max_series=50_000)


class Recorder:
    """``process`` names the aggregate documents' ids: two recorders over one prefix need two names."""

    def __init__(self, es_url: str, prefix: str, process: str = "bench-load", config: StageConfig = ONE_FLUSH) -> None:
        self._client = Elasticsearch(es_url, request_timeout=120)
        store = EsAggregateWriter(self._client, prefix)
        self._stage = ServiceGraphStage(config, _NothingStored(), store, _publish, process=process)

    def observe(self, spans: Sequence[Span]) -> None:
        self._stage.observe(spans)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self._stage.flush(everything=True)
            self._stage.close()
        finally:
            self._client.close()
