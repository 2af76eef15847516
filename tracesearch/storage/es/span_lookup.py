"""The service-graph stage's questions to the span indices: a missing parent, a client's children.

Each is one batched ``terms`` query over the daily indices the spans can be in, never a scan.
Spans must be searchable (refreshed) to be found: the wait window is far longer than the refresh
interval, so spans stored by another process within the window are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticsearch import Elasticsearch

from tracesearch.model import SpanKind
from tracesearch.servicegraph.model import ParentInfo, SpanRef
from tracesearch.storage.es.indices import NS_PER_S, span_indices_between
from tracesearch.storage.es.search import search

MAX_HITS = 10_000
CHUNK = 1_000
_KINDS = {kind.label: kind for kind in SpanKind}
_SERVER_KINDS = ("server", "consumer")
_FIELDS = ["trace.id", "span.id", "parent.id", "span.kind", "service.name", "duration_ns"]


class EsSpanLookup:
    def __init__(self, client: Elasticsearch, index_prefix: str, max_trace_duration_s: float):
        self._client = client
        self._prefix = index_prefix
        self._padding_ns = int(max_trace_duration_s * NS_PER_S)

    def _hits(self, refs: Sequence[SpanRef], query: dict[str, Any], before: bool) -> list[dict[str, Any]]:
        """Spans matching ``query`` in the indices around the refs' start times: a parent starts
        before its child (``before``), a child after its parent."""
        low = min(r.start_ns for r in refs) - (self._padding_ns if before else 0)
        high = max(r.start_ns for r in refs) + (0 if before else self._padding_ns)
        index = ",".join(span_indices_between(self._prefix, low, high))
        body = {"query": query, "size": MAX_HITS, "_source": _FIELDS, "track_total_hits": False}
        return [h["_source"] for h in search(self._client, index, body)["hits"]["hits"]]

    def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
        found: dict[tuple[str, str], ParentInfo] = {}
        for start in range(0, len(refs), CHUNK):
            chunk = refs[start : start + CHUNK]
            wanted = {(r.trace_id, r.span_id) for r in chunk}
            query = _filter(("trace.id", {r.trace_id for r in chunk}), ("span.id", {r.span_id for r in chunk}))
            for doc in self._hits(chunk, query, before=True):
                key = (doc["trace"]["id"], doc["span"]["id"])
                kind = _KINDS.get(doc["span"]["kind"], SpanKind.UNSPECIFIED)
                # Zipkin's shared spans: of the two halves, the server one is the parent.
                if key in wanted and (key not in found or kind is SpanKind.SERVER):
                    found[key] = ParentInfo(doc["service"]["name"], kind, int(doc["duration_ns"]))
        return found

    def served(self, refs: Sequence[SpanRef]) -> set[tuple[str, str]]:
        served: set[tuple[str, str]] = set()
        for start in range(0, len(refs), CHUNK):
            chunk = refs[start : start + CHUNK]
            service = {(r.trace_id, r.span_id): r.service for r in chunk}
            ids = sorted({r.span_id for r in chunk})
            shared = {"bool": {"filter": [{"terms": {"span.id": ids}}, {"term": {"span.kind": "server"}}]}}
            query = {
                "bool": {
                    "filter": [{"terms": {"trace.id": sorted({r.trace_id for r in chunk})}}],
                    "should": [{"terms": {"parent.id": ids}}, shared],
                    "minimum_should_match": 1,
                }
            }
            for doc in self._hits(chunk, query, before=False):
                trace_id, kind = doc["trace"]["id"], doc["span"]["kind"]
                keys = [(trace_id, doc.get("parent", {}).get("id", ""))]
                if kind == "server":
                    keys.append((trace_id, doc["span"]["id"]))
                for key in keys:
                    # A child in another service, or a server/consumer in the same one: the call was paired.
                    if key in service and (service[key] != doc["service"]["name"] or kind in _SERVER_KINDS):
                        served.add(key)
        return served


def _filter(*conditions: tuple[str, set[str]]) -> dict[str, Any]:
    return {"bool": {"filter": [{"terms": {name: sorted(values)}} for name, values in conditions]}}
