"""Adaptive sampling on the real Elasticsearch: the SamplingStore conformance suite, the lease under a
race, two runners of which one computes each window and the other takes over, the output surviving a
restart, and the sampler converging on span metrics Elasticsearch added up."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping

import pytest
import requests

from tests.adaptive_traffic import Clients, Key, run
from tests.integration.conftest import drop_prefix
from tests.sampling_store_conformance import MakeStore, SamplingStoreConformance
from tracesearch.sampling.adaptive import AdaptiveRunner, AdaptiveSampling
from tracesearch.sampling.adaptive_math import AdaptiveConfig
from tracesearch.settings import Settings
from tracesearch.storage.contracts import SamplingStore
from tracesearch.storage.es.aggregate_reader import EsAggregateReader
from tracesearch.storage.es.aggregate_writer import EsAggregateWriter
from tracesearch.storage.es.client import make_client
from tracesearch.storage.es.sampling_store import EsSamplingStore
from tracesearch.storage.es.templates import TemplateInstaller

START_S = 1_700_000_040 - 1_700_000_040 % 60
CONFIG = AdaptiveConfig(target_tps=1.0, min_probability=1e-4, tolerance=0.3, initial_probability=1.0)
FAST, SLOW = ("shop", "GET /search"), ("shop", "POST /checkout")


class Clock:
    def __init__(self, now: float = START_S) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix(es_url: str) -> Iterator[str]:
    name = f"it-samp-{uuid.uuid4().hex[:8]}"
    yield name
    drop_prefix(es_url, name)


class TestEsSampling(SamplingStoreConformance):
    @pytest.fixture
    def make_store(self, es_url: str, prefix: str) -> MakeStore:
        settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})

        def make(clock: Callable[[], float]) -> SamplingStore:
            return EsSamplingStore(make_client(settings), prefix, replicas=0, clock=clock)

        return make


class Process:
    """One service process: its own client, store, source and runner, on a shared clock."""

    def __init__(self, es_url: str, prefix: str, name: str, clock: Clock):
        settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
        client = make_client(settings)
        self.store = EsSamplingStore(client, prefix, replicas=0, clock=clock)
        self.source = AdaptiveSampling(self.store, CONFIG, clock)
        self.runner = AdaptiveRunner(self.store, EsAggregateReader(client, prefix), self.source, CONFIG, name, clock)
        self.writer = EsAggregateWriter(client, prefix, prepare=TemplateInstaller(client, settings).ensure)


def test_of_many_processes_racing_for_a_free_lease_exactly_one_gets_it(es_url: str, prefix: str) -> None:
    clock = Clock()
    stores = [Process(es_url, prefix, f"p{i}", clock).store for i in range(8)]
    stores[0].read_state()  # nothing yet
    for round_ in range(5):
        clock.now += CONFIG.lease_ttl_s + 1  # whoever held it has expired
        barrier = threading.Barrier(len(stores))
        won: list[str] = []

        def race(store: SamplingStore, name: str, barrier: threading.Barrier = barrier, won: list[str] = won) -> None:
            barrier.wait()
            if store.acquire_lease(name, CONFIG.lease_ttl_s):
                won.append(name)

        threads = [threading.Thread(target=race, args=(s, f"p{i}-{round_}")) for i, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, won


def test_two_runners_one_computes_each_window_the_other_takes_over_and_a_restart_keeps_the_output(
    es_url: str, prefix: str
) -> None:
    clock = Clock()
    a, b = Process(es_url, prefix, "a", clock), Process(es_url, prefix, "b", clock)
    real = {SLOW: 10.0, FAST: 100.0}
    clients = Clients(real, initial=CONFIG.initial_probability, lag_s=CONFIG.settle_s)
    computed: list[tuple[int, str]] = []
    alive = [a, b]

    def tick(now: float) -> Mapping[Key, float] | None:
        requests.post(f"{es_url}/{prefix}-*/_refresh", timeout=30).raise_for_status()
        clock.now = now
        for process in alive:
            if process.runner.tick():
                computed.append((int(now), process.runner.holder))
        state, _ = a.store.read_state()
        assert state is not None
        return {(op.service, op.operation): op.probability for op in state.operations}

    run(clients, a.writer, tick, START_S, minutes=8)
    # One computation per window, all by the first to take the lease.
    assert [holder for _, holder in computed] == ["a"] * 8
    assert len({at for at, _ in computed}) == 8

    # "a" dies without releasing: "b" computes again only once a's lease expired.
    alive.remove(a)
    last = computed[-1][0]
    run(clients, a.writer, tick, START_S + 8 * 60, minutes=6)
    taken_over = [at for at, holder in computed if holder == "b"]
    assert taken_over and taken_over[0] - last >= CONFIG.lease_ttl_s
    assert [holder for _, holder in computed] == ["a"] * 8 + ["b"] * len(taken_over)

    # Converged on what Elasticsearch added up: 1 trace/s for each.
    probabilities = b.source.probabilities("shop")
    assert probabilities is not None
    assert probabilities["POST /checkout"] * 10 == pytest.approx(1.0, rel=CONFIG.tolerance)
    assert probabilities["GET /search"] * 100 == pytest.approx(1.0, rel=CONFIG.tolerance)

    # A restart of every process: a new one serves the stored probabilities at once, and its runner
    # goes on from them rather than from the initial probability.
    restarted = Process(es_url, prefix, "c", clock)
    assert restarted.source.probabilities("shop") == probabilities
    clock.now += CONFIG.lease_ttl_s + 60
    assert restarted.runner.tick()
    after = restarted.source.probabilities("shop")
    assert after is not None and after["GET /search"] == pytest.approx(probabilities["GET /search"], rel=0.5)


def test_a_runner_thread_that_stops_gives_the_lease_up(es_url: str, prefix: str) -> None:
    """The real background threads (interval 1 s, wall clock): one of two holds the lease and stores
    the output; stopped, it releases the lease and the other takes it at its next interval."""
    config = AdaptiveConfig(interval_s=1.0)
    settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
    runners = []
    for name in ("x", "y"):
        client = make_client(settings)
        store = EsSamplingStore(client, prefix, replicas=0)
        runners.append(
            AdaptiveRunner(store, EsAggregateReader(client, prefix), AdaptiveSampling(store, config), config, name)
        )
    for runner in runners:
        runner.start()
    try:
        holder = wait_for_state_holder(runners[0], lambda h: h in ("x", "y"))
        first, other = (runners[0], runners[1]) if holder == "x" else (runners[1], runners[0])
        first.stop()
        lease = EsSamplingStore(make_client(settings), prefix, replicas=0)
        deadline = threading.Event()
        for _ in range(50):
            if not lease.acquire_lease("probe", 0.001):  # held by the other: it took over
                break
            lease.release_lease("probe")
            deadline.wait(0.1)
        else:
            pytest.fail(f"{other.holder} never took the lease over")
    finally:
        for runner in runners:
            runner.stop()


def wait_for_state_holder(runner: AdaptiveRunner, ok: Callable[[str], bool]) -> str:
    store = runner._store
    pause = threading.Event()
    for _ in range(100):
        state, _ = store.read_state()
        if state is not None and ok(state.holder):
            return state.holder
        pause.wait(0.1)
    pytest.fail("no runner stored an output")
