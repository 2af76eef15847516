"""Aggregate documents: per-minute partial counts and latency histograms, one per process and flush.

Three families of daily indices, named from the minute in UTC: ``<prefix>-servicegraph-YYYY-MM-DD``
(per edge: client, server, connection_type), ``<prefix>-spanmetrics-YYYY-MM-DD`` (per service,
span name, span kind, status code) and ``<prefix>-servicelatency-YYYY-MM-DD`` (per service, written once
a minute has gone quiet: ``servicegraph.rollup``). Several processes write documents for the same minute and key;
readers add them up. Histograms are sparse: ``latency.i`` bucket indices (see
``servicegraph.histogram``) and ``latency.c`` their counts, stored but not indexed; the service-latency
rollups keep theirs in doc values instead (``latency_packed``, see ``rollup_document``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from tracesearch.model import SpanKind
from tracesearch.servicegraph.aggregator import Snapshot, Stats
from tracesearch.servicegraph.model import KIND_LABELS, STATUS_LABELS
from tracesearch.storage.contracts import StorageError, StorageUnavailable
from tracesearch.storage.es.indices import utc_day
from tracesearch.storage.es.search import call, is_transient

log = logging.getLogger(__name__)
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
SERVICEGRAPH = "servicegraph"
SPANMETRICS = "spanmetrics"
SERVICELATENCY = "servicelatency"
MAX_DAYS = 400
MAX_NAMED_DAYS = 62
_BULK_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"


def aggregate_index_for(prefix: str, family: str, ns: int) -> str:
    return f"{prefix}-{family}-{utc_day(ns).isoformat()}"


def aggregate_indices_between(prefix: str, family: str, start_ns: int, end_ns: int) -> str:
    """Comma-separated daily indices of [start_ns, end_ns], at most MAX_DAYS (the newest ones)."""
    start_ns = max(start_ns, end_ns - MAX_DAYS * 86400 * NS_PER_S)
    first, last = utc_day(start_ns), utc_day(end_ns)
    days = max(0, (last - first).days)
    if days > MAX_NAMED_DAYS:
        # A long range by pattern (the query's time filter does the rest): hundreds of names would
        # overflow the request line Elasticsearch accepts.
        return f"{prefix}-{family}-*"
    return ",".join(f"{prefix}-{family}-{(first + timedelta(days=i)).isoformat()}" for i in range(days + 1))


def _latency(stats: Stats) -> dict[str, Any]:
    indices = sorted(stats.buckets)
    return {"i": indices, "c": [stats.buckets[i] for i in indices]}


def documents(snapshot: Snapshot, prefix: str, process: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(index, id, document) of every aggregate; ids depend only on the process and flush, so a
    retried write creates nothing twice."""
    docs: list[tuple[str, str, dict[str, Any]]] = []
    indices: dict[tuple[str, int], str] = {}  # most aggregates of a flush share a few minutes

    def index_for(family: str, minute: int) -> str:
        index = indices.get((family, minute))
        if index is None:
            index = indices[(family, minute)] = aggregate_index_for(prefix, family, minute)
        return index

    for (minute, (client, server, connection_type)), stats in snapshot.edges.items():
        doc = {"client": client, "server": server, "connection_type": connection_type}
        docs.append((index_for(SERVICEGRAPH, minute), "", _with_stats(doc, minute, stats, process)))
    for (minute, (service, name, kind, status)), stats in snapshot.spans.items():
        labels = {
            "service": service,
            "span_name": name,
            "span_kind": KIND_LABELS[SpanKind(kind)],
            "status_code": STATUS_LABELS[status],
        }
        docs.append((index_for(SPANMETRICS, minute), "", _with_stats(labels, minute, stats, process)))
    for (minute, service), stats in snapshot.latency.items():
        docs.append((index_for(SERVICELATENCY, minute), "", rollup_document(service, minute, stats, process)))
    named = []
    for n, (index, _, doc) in enumerate(docs):
        doc["doc_id"] = f"{process}-{snapshot.seq}-{n}"  # a unique sort key, for paging readers
        named.append((index, doc["doc_id"], doc))
    return named


def _with_stats(doc: dict[str, Any], minute_ns: int, stats: Stats, process: str) -> dict[str, Any]:
    doc.update(
        {
            "@timestamp": minute_ns // NS_PER_MS,
            "calls": stats.calls,
            "errors": stats.errors,
            "latency_sum_s": stats.sum_ns / NS_PER_S,
            "latency": _latency(stats),
            "process": process,
        }
    )
    return doc


PACK_SHIFT = 40  # latency_packed = bucket << 40 | count: a bucket (< 2^9) and its count (< 2^40) in one long


def pack(buckets: dict[int, int]) -> list[int]:
    return [(index << PACK_SHIFT) | buckets[index] for index in sorted(buckets)]


def unpack(packed: list[int]) -> dict[int, int]:
    mask = (1 << PACK_SHIFT) - 1
    return {value >> PACK_SHIFT: value & mask for value in packed}


def rollup_document(service: str, minute_ns: int, stats: Stats, process: str) -> dict[str, Any]:
    """A per-service rollup. Its histogram is a long field with doc values, not an object in ``_source``:
    a reader asks for doc values only, and loading the stored fields of each of a day's documents
    (DEFLATE blocks: about 0.15 ms a document) would cost more than the whole rest of the query."""
    return {
        "@timestamp": minute_ns // NS_PER_MS,
        "service": service,
        "calls": stats.calls,
        "errors": stats.errors,
        "latency_sum_s": stats.sum_ns / NS_PER_S,
        "latency_packed": pack(stats.buckets),
        "process": process,
    }


MAX_BULK_DOCS = 2_000


class EsAggregateWriter:
    """AggregateWriter on ``_bulk`` ``create``: 201 and 409 are stored, 429/5xx raise (the stage keeps
    the snapshot for the next flush), other 4xx are logged and dropped (a document we built wrong)."""

    def __init__(self, client: Elasticsearch, index_prefix: str, prepare: Callable[[], None] = lambda: None):
        self._client = client
        self._prefix = index_prefix
        self._prepare = prepare  # e.g. install the index templates, once, before the first write

    def write(self, snapshot: Snapshot, process: str) -> None:
        self._prepare()
        docs = documents(snapshot, self._prefix, process)
        # Bounded requests: a flush after an outage, or over a backfill, can hold hundreds of
        # thousands of documents, which Elasticsearch refuses in one request (413).
        for start in range(0, len(docs), MAX_BULK_DOCS):
            self._write_docs(docs[start : start + MAX_BULK_DOCS])

    def _write_docs(self, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        lines = []
        for index, doc_id, doc in docs:
            lines.append(orjson.dumps({"create": {"_index": index, "_id": doc_id}}))
            lines.append(orjson.dumps(doc))
        body = b"\n".join(lines) + b"\n"
        try:
            response = call(lambda: self._client.bulk(operations=body, filter_path=_BULK_FILTER))  # type: ignore[arg-type]
        except StorageError as exc:
            raise StorageUnavailable(f"aggregates not stored: {exc}") from exc
        answer = response.body
        if answer.get("errors"):
            self._check_items(answer["items"])

    @staticmethod
    def _check_items(items: list[dict[str, Any]]) -> None:
        statuses = [item["create"]["status"] for item in items]
        if any(is_transient(s) for s in statuses):
            raise StorageUnavailable("Elasticsearch refused some aggregates for now (429/5xx)")
        for item in items:
            outcome = item["create"]
            if outcome["status"] >= 300 and outcome["status"] != 409:
                log.error("aggregate document refused: %s", outcome.get("error"))
