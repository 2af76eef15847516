"""Per-service latency rollups are held until their minute goes quiet (or for ``hold_ns`` at most), so a
minute of a service is one document per process, not one per flush."""

from __future__ import annotations

from tests.unit.servicegraph.topology import MINUTE_NS, T0, StoreLookup, span
from tracesearch.model import Span, SpanKind
from tracesearch.servicegraph.aggregator import Snapshot
from tracesearch.servicegraph.rollup import HOLD_NS, IDLE_NS, ServiceLatency, written_within_ns
from tracesearch.servicegraph.stage import ServiceGraphStage, StageConfig

S = 1_000_000_000


def spans_at(start_ns: int, service: str = "web", n: int = 3) -> list[Span]:
    return [span(f"{i:032x}", f"{i + 1:016x}", service, SpanKind.SERVER, start_ns=start_ns + i) for i in range(n)]


def test_an_entry_is_written_once_its_minute_went_quiet() -> None:
    rollup = ServiceLatency()
    rollup.add(spans_at(T0), now_ns=0)
    rollup.add(spans_at(T0, "api"), now_ns=20 * S)
    assert rollup.drain(now_ns=IDLE_NS - 1) == {}
    done = rollup.drain(now_ns=IDLE_NS)
    assert list(done) == [(T0, "web")] and done[(T0, "web")].calls == 3
    assert list(rollup.drain(now_ns=20 * S + IDLE_NS)) == [(T0, "api")]
    assert len(rollup) == 0


def test_an_entry_that_keeps_receiving_spans_is_written_after_the_hold_time() -> None:
    rollup = ServiceLatency()
    for now in range(0, HOLD_NS, 10 * S):
        rollup.add(spans_at(T0, n=1), now_ns=now)
        assert rollup.drain(now_ns=now) == {}
    rollup.add(spans_at(T0, n=1), now_ns=HOLD_NS)
    done = rollup.drain(now_ns=HOLD_NS)
    assert done[(T0, "web")].calls == HOLD_NS // (10 * S) + 1
    rollup.add(spans_at(T0, n=1), now_ns=HOLD_NS + S)  # a late one opens a new entry
    assert rollup.drain(now_ns=HOLD_NS + S + IDLE_NS)[(T0, "web")].calls == 1


def test_minutes_and_services_are_apart_and_everything_drains_at_shutdown() -> None:
    rollup = ServiceLatency()
    rollup.add([*spans_at(T0), *spans_at(T0 + MINUTE_NS - 10), *spans_at(T0 + MINUTE_NS, "api")], now_ns=0)
    done = rollup.drain(now_ns=1, everything=True)
    assert {key: stats.calls for key, stats in done.items()} == {(T0, "web"): 6, (T0 + MINUTE_NS, "api"): 3}


def test_memory_is_bounded_by_writing_the_oldest_entries_early() -> None:
    rollup = ServiceLatency(max_open=2)
    for minute in range(4):
        rollup.add(spans_at(T0 + minute * MINUTE_NS, n=1), now_ns=minute)
    assert sorted(rollup.drain(now_ns=10)) == [(T0, "web"), (T0 + MINUTE_NS, "web")]
    assert len(rollup) == 2


def test_the_stage_writes_the_rollups_with_its_aggregates() -> None:
    written: list[Snapshot] = []

    class Store:
        def write(self, snapshot: Snapshot, process: str) -> None:
            written.append(snapshot)

    now = [0]
    stage = ServiceGraphStage(
        StageConfig(wait_s=0, flush_interval_s=3600),
        StoreLookup(),
        Store(),
        lambda s, c: None,
        "p1",
        now_ns=lambda: now[0],
    )
    stage.observe(spans_at(T0))
    stage.flush()
    assert all(not s.latency for s in written)  # still open
    now[0] = IDLE_NS
    stage.flush()
    assert [s.latency[(T0, "web")].calls for s in written if s.latency] == [3]
    stage.observe(spans_at(T0 + MINUTE_NS))
    stage.close()  # shutdown writes what is open
    assert sum(stats.calls for s in written for stats in s.latency.values()) == 6


def test_readers_know_how_long_after_a_span_its_rollup_is_surely_written() -> None:
    assert written_within_ns(5.0) >= HOLD_NS + 5 * S
