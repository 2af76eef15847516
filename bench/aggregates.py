"""The service-graph stage run over the query data set as it is loaded, so the service map and span
metrics of the data set exist as they would had the spans come through the service."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import orjson
from elasticsearch import Elasticsearch

from tracesearch.model import Span
from tracesearch.servicegraph.aggregator import Snapshot, Stats
from tracesearch.servicegraph.model import ParentInfo, SpanRef
from tracesearch.servicegraph.rollup import RollupKey
from tracesearch.servicegraph.stage import Counters, ServiceGraphStage, StageConfig
from tracesearch.storage.es.aggregate_writer import (
    MAX_BULK_DOCS,
    SERVICELATENCY,
    EsAggregateWriter,
    aggregate_index_for,
    rollup_document,
)


class _NothingStored:
    """Spans of a trace are generated together, so a parent is always seen in memory."""

    def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
        return {}

    def served(self, refs: Sequence[SpanRef]) -> set[tuple[str, str]]:
        return set()


def _publish(snapshot: Snapshot, counters: Counters) -> None:
    """The bench has no /metrics to publish to."""


class LiveRollups:
    """The per-service latency rollups a live process would have written for everything loaded so far: one
    document per minute and service, rewritten (same id) when a later load adds spans to an old minute.
    Loading a day of history in steps touches every minute in every step, which would otherwise add one
    document per minute and service per step; a live deployment writes about one per process."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.stats: dict[RollupKey, Stats] = {}

    def add(self, latency: dict[RollupKey, Stats]) -> None:
        for key, stats in latency.items():
            into = self.stats.setdefault(key, Stats())
            into.calls += stats.calls
            into.errors += stats.errors
            into.sum_ns += stats.sum_ns
            for index, count in stats.buckets.items():
                into.buckets[index] = into.buckets.get(index, 0) + count

    def bodies(self) -> list[bytes]:
        """``_bulk`` bodies that index (overwrite) every rollup."""
        lines = []
        for (minute, service), stats in sorted(self.stats.items()):
            doc = rollup_document(service, minute, stats, "bench-load")
            doc["doc_id"] = f"bench-load-{minute}-{service}"
            action = {
                "index": {"_index": aggregate_index_for(self._prefix, SERVICELATENCY, minute), "_id": doc["doc_id"]}
            }
            lines.append(orjson.dumps(action) + b"\n" + orjson.dumps(doc) + b"\n")
        return [b"".join(lines[i : i + MAX_BULK_DOCS]) for i in range(0, len(lines), MAX_BULK_DOCS)]

    def write(self, client: Elasticsearch) -> None:
        for body in self.bodies():
            answer = client.bulk(operations=body, refresh=False)  # type: ignore[arg-type]
            if answer.get("errors"):
                raise RuntimeError(f"rollups not stored: {str(answer)[:300]}")


class _SplitWriter:
    """The stage's writer: service-graph and span-metrics aggregates as the service writes them, the
    per-service rollups to ``LiveRollups``."""

    def __init__(self, store: EsAggregateWriter, live: LiveRollups) -> None:
        self._store = store
        self._live = live

    def write(self, snapshot: Snapshot, process: str) -> None:
        self._live.add(snapshot.latency)
        snapshot.latency = {}
        self._store.write(snapshot, process)


# A long window: the whole data set is generated in minutes, flushed once at the end.
ONE_FLUSH = StageConfig(wait_s=3600.0, max_pending=2_000_000, flush_interval_s=3600.0, max_series=50_000)


class Recorder:
    """``process`` names the aggregate documents' ids: two recorders over one prefix need two names."""

    def __init__(
        self,
        es_url: str,
        prefix: str,
        process: str = "bench-load",
        config: StageConfig = ONE_FLUSH,
        live: LiveRollups | None = None,
    ) -> None:
        self._client = Elasticsearch(es_url, request_timeout=120)
        self._live = live if live is not None else LiveRollups(prefix)
        store = _SplitWriter(EsAggregateWriter(self._client, prefix), self._live)
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
            if kind is None:
                self._live.write(self._client)
        finally:
            self._client.close()
