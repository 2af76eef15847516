"""The bench's loader writes the per-service rollups a live process would have: one per minute and service,
rewritten (same id) when a later step adds spans to its minute."""

from __future__ import annotations

import orjson

from bench.aggregates import LiveRollups
from tracesearch.servicegraph.aggregator import Stats

MINUTE_NS = 60_000_000_000
T0 = 1_795_176_000_000_000_000  # 2026-11-20 12:00 UTC


def stats(*durations_ns: int) -> Stats:
    found = Stats()
    for d in durations_ns:
        found.add(d, False)
    return found


def test_later_steps_add_up_into_the_same_documents() -> None:
    live = LiveRollups("p")
    live.add({(T0, "web"): stats(1_000_000), (T0 + MINUTE_NS, "web"): stats(2_000_000)})
    live.add({(T0, "web"): stats(1_000_000, 4_000_000)})
    [body] = live.bodies()
    lines = [orjson.loads(line) for line in body.splitlines()]
    actions, docs = lines[0::2], lines[1::2]
    assert [a["index"]["_id"] for a in actions] == [f"bench-load-{T0}-web", f"bench-load-{T0 + MINUTE_NS}-web"]
    assert {a["index"]["_index"] for a in actions} == {"p-servicelatency-2026-11-20"}
    assert [d["calls"] for d in docs] == [3, 1]
    assert docs[0]["doc_id"] == actions[0]["index"]["_id"]
