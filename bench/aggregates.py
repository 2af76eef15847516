"""The service-graph stage run over the query data set as it is loaded, so the service map and span
metrics of the data set exist as they would had the spans come through the service."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TypeVar

import orjson
from elasticsearch import Elasticsearch

from tracesearch.model import Span
from tracesearch.servicegraph.aggregator import Snapshot, Stats
from tracesearch.servicegraph.model import ParentInfo, SpanRef
from tracesearch.servicegraph.stage import Counters, ServiceGraphStage, StageConfig
from tracesearch.storage.es.aggregate_writer import MAX_BULK_DOCS, documents


class _NothingStored:
    """Spans of a trace are generated together, so a parent is always seen in memory."""

    def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
        return {}

    def served(self, refs: Sequence[SpanRef]) -> set[tuple[str, str]]:
        return set()


def _publish(snapshot: Snapshot, counters: Counters) -> None:
    """The bench has no /metrics to publish to."""


class LiveAggregates:
    """The aggregates a live process would have written for everything loaded so far: one document per
    minute and key (edge, span labels, service), rewritten (same id) when a later load adds spans to an old
    minute. Loading a day of history touches every minute in every flush, which would otherwise add one
    document per minute and key per flush (documents that grow with load time, which a live deployment's
    do not: it writes a few per process while a minute is open)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.merged = Snapshot()

    def add(self, snapshot: Snapshot) -> None:
        _merge_into(self.merged.edges, snapshot.edges)
        _merge_into(self.merged.spans, snapshot.spans)
        _merge_into(self.merged.latency, snapshot.latency)

    def bodies(self) -> Iterator[bytes]:
        """``_bulk`` bodies that index (overwrite) every aggregate, ids named by their keys."""
        for family in ("edges", "spans", "latency"):
            entries = sorted(getattr(self.merged, family).items())
            for start in range(0, len(entries), MAX_BULK_DOCS):
                chunk = dict(entries[start : start + MAX_BULK_DOCS])
                part = Snapshot()
                setattr(part, family, chunk)
                docs = documents(part, self._prefix, LOAD_PROCESS)
                lines = []
                for key, (index, _, doc) in zip(chunk, docs, strict=True):
                    doc["doc_id"] = _doc_id(key)
                    lines.append(orjson.dumps({"index": {"_index": index, "_id": doc["doc_id"]}}))
                    lines.append(orjson.dumps(doc))
                yield b"\n".join(lines) + b"\n"

    def write(self, client: Elasticsearch) -> None:
        for body in self.bodies():
            answer = client.bulk(operations=body, refresh=False)  # type: ignore[arg-type]
            if answer.get("errors"):
                raise RuntimeError(f"aggregates not stored: {str(answer)[:300]}")


LOAD_PROCESS = "bench-load"
K = TypeVar("K")


def _doc_id(key: tuple[int, object]) -> str:
    """Stable over loads; hashed because span names can be long and hold any character."""
    minute, labels = key
    return f"{LOAD_PROCESS}-{minute}-{hashlib.blake2b(repr(labels).encode(), digest_size=8).hexdigest()}"


def _merge_into(merged: dict[K, Stats], taken: dict[K, Stats]) -> None:
    for key, stats in taken.items():
        _merge(merged.setdefault(key, Stats()), stats)


def _merge(into: Stats, stats: Stats) -> None:
    into.calls += stats.calls
    into.errors += stats.errors
    into.sum_ns += stats.sum_ns
    for index, count in stats.buckets.items():
        into.buckets[index] = into.buckets.get(index, 0) + count
    into.client_sum_ns += stats.client_sum_ns
    for index, count in stats.client_buckets.items():
        into.client_buckets[index] = into.client_buckets.get(index, 0) + count


class _LiveWriter:
    """The stage's writer: every flush's aggregates into ``LiveAggregates``, written when loading ends."""

    def __init__(self, live: LiveAggregates) -> None:
        self._live = live

    def write(self, snapshot: Snapshot, process: str) -> None:
        self._live.add(snapshot)


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
        live: LiveAggregates | None = None,
    ) -> None:
        self._client = Elasticsearch(es_url, request_timeout=120)
        self._live = live if live is not None else LiveAggregates(prefix)
        self._stage = ServiceGraphStage(config, _NothingStored(), _LiveWriter(self._live), _publish, process=process)

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
