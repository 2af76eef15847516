"""The bench's loader writes the aggregates a live process would have: one document per minute and key,
rewritten (same id) when a later flush or step adds spans to its minute, so their number does not grow
with how long loading took."""

from __future__ import annotations

from typing import Any

import orjson

from bench.aggregates import LiveAggregates
from tracesearch.model import SpanKind, StatusCode
from tracesearch.servicegraph.aggregator import Snapshot, Stats

MINUTE_NS = 60_000_000_000
T0 = 1_795_176_000_000_000_000  # 2026-11-20 12:00 UTC
EDGE = ("web", "db", "")
SPAN = ("web", "GET /", int(SpanKind.SERVER), int(StatusCode.UNSET))


def stats(*durations_ns: int) -> Stats:
    found = Stats()
    for d in durations_ns:
        found.add(d, False)
    return found


def written(live: LiveAggregates) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    lines = [orjson.loads(line) for body in live.bodies() for line in body.splitlines()]
    return list(zip(lines[0::2], lines[1::2], strict=True))


def flush(minute: int, *durations_ns: int) -> Snapshot:
    return Snapshot(
        edges={(minute, EDGE): stats(*durations_ns)},
        spans={(minute, SPAN): stats(*durations_ns)},
        latency={(minute, "web"): stats(*durations_ns)},
    )


def test_later_flushes_add_up_into_one_document_per_minute_and_key() -> None:
    live = LiveAggregates("p")
    live.add(flush(T0, 1_000_000))
    live.add(flush(T0 + MINUTE_NS, 2_000_000))
    first_ids = [action["index"]["_id"] for action, _ in written(live)]
    live.add(flush(T0, 1_000_000, 4_000_000))
    docs = written(live)
    assert [action["index"]["_id"] for action, _ in docs] == first_ids  # rewritten, not added
    assert len(set(first_ids)) == 6
    by_index: dict[str, list[int]] = {}
    for action, doc in docs:
        assert doc["doc_id"] == action["index"]["_id"]
        by_index.setdefault(action["index"]["_index"], []).append(doc["calls"])
    assert by_index == {
        "p-servicegraph-2026-11-20": [3, 1],
        "p-spanmetrics-2026-11-20": [3, 1],
        "p-servicelatency-2026-11-20": [3, 1],
    }


def test_client_side_latency_adds_up_too() -> None:
    live = LiveAggregates("p")
    for duration in (1_000_000, 3_000_000):
        edge = Stats()
        edge.add(duration, True)
        edge.add_client(duration + 500_000)
        live.add(Snapshot(edges={(T0, EDGE): edge}))
    merged = live.merged.edges[(T0, EDGE)]
    assert (merged.calls, merged.errors, merged.client_sum_ns) == (2, 2, 5_000_000)
    assert sum(merged.client_buckets.values()) == 2
