"""Pairing: exact call and error counts per edge, whatever the arrival order, batching or process."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from tests.unit.servicegraph.topology import StoreLookup, brute_force, random_traces, span
from tracesearch.model import Span, SpanKind
from tracesearch.servicegraph.aggregator import Aggregator
from tracesearch.servicegraph.model import Call
from tracesearch.servicegraph.pairing import Pairer

WAIT_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def edge_counts(calls: Sequence[Call]) -> tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str, str]]]:
    """Counts as a reader sees them: through the per-minute aggregates, summed over minutes."""
    aggregator = Aggregator(max_series=10_000)
    aggregator.add_calls(calls)
    calls_by_edge: Counter[tuple[str, str, str]] = Counter()
    errors_by_edge: Counter[tuple[str, str, str]] = Counter()
    for (_, edge), stats in aggregator.drain().edges.items():
        calls_by_edge[edge] += stats.calls
        errors_by_edge[edge] += stats.errors
    return calls_by_edge, errors_by_edge


def batches(rng: random.Random, spans: list[Span]) -> list[list[Span]]:
    shuffled = spans[:]
    rng.shuffle(shuffled)
    cuts = sorted(rng.sample(range(1, len(shuffled)), min(len(shuffled) - 1, len(shuffled) // 7)))
    return [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]


def finish(pairer: Pairer, lookup: StoreLookup) -> list[Call]:
    expired = pairer.expire(everything=True)
    return pairer.resolve(expired, lookup.parents(expired.parent_refs()), lookup.served(expired.client_refs()))


@pytest.mark.parametrize("seed", range(8))
def test_one_process_counts_equal_brute_force_in_any_order_and_batching(seed: int) -> None:
    spans = random_traces(seed, 60)
    rng = random.Random(seed)
    clock = Clock()
    pairer = Pairer(WAIT_S, max_pending=100_000, clock=clock)
    lookup = StoreLookup()
    calls: list[Call] = []
    for batch in batches(rng, spans):
        lookup.store(batch)
        calls += pairer.add(batch).calls
        clock.now += WAIT_S / 200  # every span arrives within the window of every other
        expired = pairer.expire()
        assert not expired.orphans
        calls += pairer.resolve(expired, {}, set())
    calls += finish(pairer, lookup)
    assert edge_counts(calls) == brute_force(spans)
    assert pairer.expired_unpaired == 0


@pytest.mark.parametrize("seed", range(8))
def test_spans_spread_over_processes_count_each_call_exactly_once(seed: int) -> None:
    """Each span is stored (and fed) by one of three processes; Elasticsearch (the store) sees all."""
    spans = random_traces(100 + seed, 60)
    rng = random.Random(seed)
    clock = Clock()
    processes = [Pairer(WAIT_S, 100_000, clock) for _ in range(3)]
    lookup = StoreLookup()
    calls: list[Call] = []
    for batch in batches(rng, spans):
        lookup.store(batch)  # written to Elasticsearch before the stage sees it
        calls += rng.choice(processes).add(batch).calls
    for pairer in processes:
        calls += finish(pairer, lookup)
    assert edge_counts(calls) == brute_force(spans)


def test_expiry_with_the_window_looks_parents_up_and_pairs_across_processes() -> None:
    clock = Clock()
    a, b = Pairer(WAIT_S, 100, clock), Pairer(WAIT_S, 100, clock)
    lookup = StoreLookup()
    parent = span("1" * 32, "a" * 16, "web", SpanKind.CLIENT)
    child = span("1" * 32, "b" * 16, "api", SpanKind.SERVER, parent="a" * 16, error=True)
    lookup.store([child])
    assert a.add([child]).calls == []
    lookup.store([parent])
    assert b.add([parent]).calls == []
    clock.now += WAIT_S / 2
    assert not a.expire() and not b.expire()  # still waiting: nothing looked up yet
    clock.now += WAIT_S
    calls = []
    for pairer in (a, b):
        expired = pairer.expire()
        calls += pairer.resolve(expired, lookup.parents(expired.parent_refs()), lookup.served(expired.client_refs()))
    assert [(c.client, c.server, c.connection_type, c.error) for c in calls] == [("web", "api", "", True)]


def test_a_late_parent_within_the_window_pairs_at_once() -> None:
    clock = Clock()
    pairer = Pairer(WAIT_S, 100, clock)
    child = span("1" * 32, "b" * 16, "api", SpanKind.SERVER, parent="a" * 16, duration_ns=7_000)
    assert pairer.add([child]).calls == []
    clock.now += WAIT_S * 0.9
    calls = pairer.add([span("1" * 32, "a" * 16, "web", SpanKind.CLIENT, duration_ns=9_000)]).calls
    assert [(c.client, c.server, c.server_ns, c.client_ns) for c in calls] == [("web", "api", 7_000, 9_000)]
    clock.now += WAIT_S
    assert not pairer.expire().orphans


def test_a_child_whose_parent_never_comes_is_counted_as_expired_unpaired() -> None:
    clock = Clock()
    pairer = Pairer(WAIT_S, 100, clock)
    pairer.add([span("1" * 32, "b" * 16, "api", SpanKind.SERVER, parent="a" * 16)])
    clock.now += WAIT_S + 1
    expired = pairer.expire()
    assert pairer.resolve(expired, {}, set()) == []
    assert pairer.expired_unpaired == 1
    # The parent arriving after the window finds nobody waiting: no call, counted once as lost.
    assert pairer.add([span("1" * 32, "a" * 16, "web", SpanKind.CLIENT)]).calls == []


def test_max_pending_lets_the_oldest_go_early() -> None:
    clock = Clock()
    pairer = Pairer(WAIT_S, max_pending=2, clock=clock)
    pairer.add([span("1" * 32, f"{i:016x}", "api", SpanKind.SERVER, parent="f" * 16) for i in range(5)])
    expired = pairer.expire()
    assert len(expired.orphans) == 3 and len(pairer) == 2 and pairer.evicted_early == 3


def test_virtual_peers_without_a_child_in_another_service() -> None:
    clock = Clock()
    pairer = Pairer(WAIT_S, 100, clock)
    db = span("1" * 32, "a" * 16, "api", SpanKind.CLIENT, attributes={"db.system": "postgresql", "db.name": "orders"})
    gateway = span("1" * 32, "b" * 16, "api", SpanKind.CLIENT, error=True, attributes={"peer.service": "payments"})
    queue = span("1" * 32, "c" * 16, "api", SpanKind.PRODUCER, attributes={"messaging.system": "kafka"})
    host = span("1" * 32, "d" * 16, "api", SpanKind.CLIENT, attributes={"server.address": "cache.local"})
    served = span("1" * 32, "e" * 16, "api", SpanKind.CLIENT, attributes={"peer.service": "auth"})
    internal = span("1" * 32, "f" * 16, "api", SpanKind.INTERNAL, attributes={"peer.service": "nope"})
    assert pairer.add([db, gateway, queue, host, served, internal]).calls == []
    lookup = StoreLookup()
    lookup.store([span("1" * 32, "9" * 16, "auth", SpanKind.SERVER, parent="e" * 16)])  # another process's
    calls = finish(pairer, lookup)
    assert sorted((c.client, c.server, c.connection_type, c.error) for c in calls) == [
        ("api", "cache.local", "virtual_node", False),
        ("api", "kafka", "messaging_system", False),
        ("api", "orders", "database", False),
        ("api", "payments", "virtual_node", True),
    ]


def test_root_server_spans_are_called_by_user_at_once() -> None:
    pairer = Pairer(WAIT_S, 100, Clock())
    calls = pairer.add(
        [
            span("1" * 32, "a" * 16, "web", SpanKind.SERVER, error=True, duration_ns=5_000),
            span("2" * 32, "a" * 16, "web", SpanKind.INTERNAL),  # a root, but nobody called it
        ]
    ).calls
    assert [(c.client, c.server, c.error, c.server_ns) for c in calls] == [("user", "web", True, 5_000)]


def test_producer_to_consumer_is_a_messaging_edge() -> None:
    pairer = Pairer(WAIT_S, 100, Clock())
    calls = pairer.add(
        [
            span("1" * 32, "a" * 16, "web", SpanKind.PRODUCER, attributes={"messaging.system": "kafka"}),
            span("1" * 32, "b" * 16, "worker", SpanKind.CONSUMER, parent="a" * 16),
        ]
    ).calls
    assert [(c.client, c.server, c.connection_type) for c in calls] == [("web", "worker", "messaging_system")]
    assert finish(pairer, StoreLookup()) == []  # served by its consumer: no virtual kafka node


def test_the_same_span_twice_counts_once() -> None:
    pairer = Pairer(WAIT_S, 100, Clock())
    parent = span("1" * 32, "a" * 16, "web", SpanKind.SERVER)
    child = span("1" * 32, "b" * 16, "api", SpanKind.SERVER, parent="a" * 16)
    first = pairer.add([parent, child, child])
    again = pairer.add([child, parent])
    assert [(c.client, c.server) for c in first.calls] == [("user", "web"), ("web", "api")]
    assert again.calls == [] and again.fresh == []
    assert first.fresh == [parent, child]


def test_zipkin_shared_span_halves_make_one_call_and_no_virtual_node() -> None:
    pairer = Pairer(WAIT_S, 100, Clock())
    root = span("1" * 32, "a" * 16, "web", SpanKind.SERVER)
    client = span("1" * 32, "b" * 16, "web", SpanKind.CLIENT, parent="a" * 16, attributes={"peer.service": "api"})
    server = span("1" * 32, "b" * 16, "api", SpanKind.SERVER, parent="a" * 16, attributes={"zipkin.shared": True})
    below = span("1" * 32, "c" * 16, "api", SpanKind.INTERNAL, parent="b" * 16)
    calls = pairer.add([root, client, server, below]).calls + finish(pairer, StoreLookup())
    assert sorted((c.client, c.server) for c in calls) == [("user", "web"), ("web", "api")]


@pytest.mark.parametrize("split", [False, True])
def test_a_service_calling_itself_over_the_network_is_a_loop_not_a_virtual_node(split: bool) -> None:
    """CLIENT → SERVER (and PRODUCER → CONSUMER) within one service is a call web → web, as Tempo
    draws it; the client's server.address names the service's own host, not a peer. Other pairs within
    one service are local work. ``split``: the two halves stored by two processes."""
    clock = Clock()
    a, b = Pairer(WAIT_S, 100, clock), Pairer(WAIT_S, 100, clock)
    lookup = StoreLookup()
    trace = "5" * 32
    root = span(trace, "1" * 16, "web", SpanKind.SERVER)
    client = span(trace, "2" * 16, "web", SpanKind.CLIENT, parent=root.span_id, attributes={"server.address": "web"})
    server = span(trace, "3" * 16, "web", SpanKind.SERVER, parent=client.span_id, error=True)
    internal = span(trace, "4" * 16, "web", SpanKind.INTERNAL, parent=server.span_id)
    producer = span(trace, "5" * 16, "web", SpanKind.PRODUCER, parent=internal.span_id)
    consumer = span(trace, "6" * 16, "web", SpanKind.CONSUMER, parent=producer.span_id)
    spans = [root, client, server, internal, producer, consumer]
    halves = (spans[:2], spans[2:]) if split else (spans, [])
    calls: list[Call] = []
    for pairer, part in zip((a, b), halves, strict=True):
        lookup.store(part)
        calls += pairer.add(part).calls
    clock.now += WAIT_S + 1
    for pairer in (a, b):
        expired = pairer.expire()
        calls += pairer.resolve(expired, lookup.parents(expired.parent_refs()), lookup.served(expired.client_refs()))
    counted, errors = edge_counts(calls)
    assert counted == Counter({("user", "web", ""): 1, ("web", "web", ""): 1, ("web", "web", "messaging_system"): 1})
    assert errors[("web", "web", "")] == 1
    assert (counted, errors) == brute_force(spans)
