"""LogReader on Elasticsearch: the log lines of a trace, from the team's own logs indices.

tracesearch neither writes nor maps these indices: a shipper (Filebeat, Elastic Agent, Logstash) does,
with an ECS template (``trace.id`` a keyword) or none at all (``trace.id`` dynamically mapped as text
with a ``.keyword`` subfield). The query is written to be right under both, and under a pattern that
matches nothing yet (``ignore_unavailable``/``allow_no_indices`` in ``search.search``).
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from tracesearch.model import short_trace_id
from tracesearch.storage.contracts import LogLines
from tracesearch.storage.es.search import search

NS_PER_MS = 1_000_000


def trace_ids_of(trace_id: str) -> list[str]:
    """The forms a log line may carry: the 32-digit id, and the 16 digits a 64-bit tracer (Brave, B3
    64-bit) logs when the high half is zero (spans of such traces are stored padded to 32)."""
    return list(dict.fromkeys([trace_id, short_trace_id(trace_id)]))


def id_query(field: str, trace_id: str) -> dict[str, Any]:
    """Lines whose ``field`` holds the id, whatever the field's mapping.

    ``terms`` (not ``match``) on the field itself and on ``<field>.keyword``: on a keyword field the
    first is exact and the subfield does not exist (matches nothing); on a dynamically mapped text field
    the standard analyzer keeps a hex id as one lowercase token, which the first matches, and the
    ``.keyword`` subfield holds the value exactly. ``match`` would find the same lines for hex ids, but
    it analyzes the id too: under another analyzer (or an id with separators) it would OR the pieces and
    return lines of other traces sharing one; a term never matches a part of an id. Checked against
    Elasticsearch 8 in tests/integration/test_trace_logs.py.
    """
    ids = trace_ids_of(trace_id)
    return {
        "bool": {
            "should": [{"terms": {field: ids}}, {"terms": {f"{field}.keyword": ids}}],
            "minimum_should_match": 1,
        }
    }


def trace_logs_body(field: str, trace_id: str, start_ns: int, end_ns: int, limit: int) -> dict[str, Any]:
    # Whole milliseconds that cover the window: the start rounded down, the end up.
    low, high = start_ns // NS_PER_MS, -(-end_ns // NS_PER_MS)
    time_range = {"range": {"@timestamp": {"gte": low, "lte": high, "format": "epoch_millis"}}}
    timestamp_order = {
        "order": "asc",
        # An index of the pattern without @timestamp must not fail the search ("No mapping found").
        "unmapped_type": "date",
        # Sort values of `date` and `date_nanos` indices on one scale; without it, lines of a
        # date_nanos index sort as if in another millennium among those of a date index.
        "numeric_type": "date_nanos",
    }
    return {
        "size": limit,
        # Counting one past the limit is enough to say the answer was cut, and cheap.
        "track_total_hits": limit + 1,
        "query": {"bool": {"filter": [id_query(field, trace_id), time_range]}},
        "sort": [{"@timestamp": timestamp_order}],
    }


def _line(hit: dict[str, Any]) -> dict[str, Any]:
    # `_index` and `_id` are metadata fields, which no document source can hold: no clash.
    return {**hit.get("_source", {}), "_index": hit["_index"], "_id": hit["_id"]}


class EsLogReader:
    def __init__(self, client: Elasticsearch, index: str, field: str):
        self._client = client
        self._index = index
        self._field = field

    @property
    def index(self) -> str:
        return self._index

    @property
    def field(self) -> str:
        return self._field

    def trace_logs(self, trace_id: str, start_ns: int, end_ns: int, limit: int) -> LogLines:
        body = trace_logs_body(self._field, trace_id, start_ns, end_ns, limit)
        hits = search(self._client, self._index, body).get("hits", {})
        total = hits.get("total", {}).get("value", 0)
        return LogLines([_line(h) for h in hits.get("hits", [])], truncated=total > limit)
