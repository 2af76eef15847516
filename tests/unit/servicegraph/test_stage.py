"""The stage keeps aggregates through a storage outage and writes them once it is back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tests.unit.servicegraph.topology import StoreLookup, span
from tracesearch.model import SpanKind
from tracesearch.servicegraph.aggregator import Snapshot
from tracesearch.servicegraph.model import ParentInfo, SpanRef
from tracesearch.servicegraph.stage import Counters, ServiceGraphStage, StageConfig


class FlakyStore:
    def __init__(self) -> None:
        self.down = True
        self.written: dict[str, Snapshot] = {}  # by document-id prefix: a retried snapshot overwrites itself

    def write(self, snapshot: Snapshot, process: str) -> None:
        if self.down:
            raise ConnectionError("Elasticsearch away")
        self.written[f"{process}-{snapshot.seq}"] = snapshot


def edges_of(snapshots: list[Snapshot]) -> Counter[tuple[str, str]]:
    total: Counter[tuple[str, str]] = Counter()
    for snapshot in snapshots:
        for (_, (client, server, _type)), stats in snapshot.edges.items():
            total[(client, server)] += stats.calls
    return total


def test_aggregates_survive_an_outage_and_are_written_once() -> None:
    store = FlakyStore()
    published: list[Snapshot] = []

    def publish(snapshot: Snapshot, counters: Counters) -> None:
        published.append(snapshot)

    stage = ServiceGraphStage(StageConfig(wait_s=0, flush_interval_s=3600), StoreLookup(), store, publish, "p1")
    stage.observe([span("1" * 32, "a" * 16, "web", SpanKind.SERVER)])
    stage.flush()
    stage.observe([span("2" * 32, "a" * 16, "web", SpanKind.SERVER)])
    stage.flush()
    assert store.written == {}
    store.down = False
    stage.observe([span("3" * 32, "a" * 16, "web", SpanKind.SERVER)])
    stage.close()
    assert edges_of(list(store.written.values())) == {("user", "web"): 3}
    assert edges_of(published) == {("user", "web"): 3}  # Prometheus got each flush once


def test_a_failed_lookup_is_tried_again_at_the_next_flush() -> None:
    class DownThenUp(StoreLookup):
        calls = 0

        def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("Elasticsearch away")
            return super().parents(refs)

    lookup = DownThenUp()
    store = FlakyStore()
    store.down = False
    stage = ServiceGraphStage(StageConfig(wait_s=0, flush_interval_s=3600), lookup, store, lambda s, c: None, "p1")
    parent = span("1" * 32, "a" * 16, "web", SpanKind.CLIENT)
    lookup.store([parent])  # stored by another process
    stage.observe([span("1" * 32, "b" * 16, "api", SpanKind.SERVER, parent="a" * 16)])
    stage.flush()
    assert edges_of(list(store.written.values())) == {}
    stage.flush()
    assert edges_of(list(store.written.values())) == {("web", "api"): 1}
    stage.close()
