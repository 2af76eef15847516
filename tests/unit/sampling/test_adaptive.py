"""Adaptive head sampling: the computation, fed its own output back through simulated clients, and
the runner's lease over the in-memory twin (tests/integration/test_adaptive_sampling.py: Elasticsearch)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from tests.adaptive_traffic import Clients, Key, run, stats, write_minute
from tracesearch.model import SpanKind
from tracesearch.sampling.adaptive import AdaptiveRunner, AdaptiveSampling, observe
from tracesearch.sampling.adaptive_math import AdaptiveConfig, compute, next_probability
from tracesearch.servicegraph.aggregator import OVERFLOW_LABEL, Snapshot
from tracesearch.storage.contracts import OperationSampling, SamplingState
from tracesearch.storage.memory import MemorySampling, MemoryStore

START_S = 1_700_000_040 - 1_700_000_040 % 60  # a whole minute
CONFIG = AdaptiveConfig(target_tps=1.0, min_probability=1e-4, tolerance=0.3, initial_probability=1.0)
FAST, SLOW = ("shop", "GET /search"), ("shop", "POST /checkout")


class Clock:
    def __init__(self, now: float = START_S):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Simulation:
    """One sampler process over the in-memory store; ``tick(now)`` is an interval of its runner."""

    def __init__(self, config: AdaptiveConfig = CONFIG):
        self.clock = Clock()
        self.store = MemoryStore()
        self.sampling = MemorySampling(self.clock)
        self.source = AdaptiveSampling(self.sampling, config, self.clock)
        self.runner = AdaptiveRunner(self.sampling, self.store.aggregates, self.source, config, "p1", self.clock)

    def tick(self, now: float) -> Mapping[Key, float] | None:
        self.clock.now = now
        if not self.runner.tick():
            return None
        state, _ = self.sampling.read_state()
        assert state is not None
        return {(op.service, op.operation): op.probability for op in state.operations}

    def operations(self) -> dict[Key, OperationSampling]:
        state, _ = self.sampling.read_state()
        assert state is not None
        return {(op.service, op.operation): op for op in state.operations}


def converged(history: list[dict[Key, float]], real: Mapping[Key, float], tolerance: float) -> int | None:
    """The first interval from which every operation's expected stored rate stays within the tolerance."""
    for i in range(len(history)):
        if all(
            all(abs(real[key] * probabilities.get(key, 1.0) - 1.0) < tolerance for key in real)
            for probabilities in history[i:]
        ):
            return i + 1
    return None


@pytest.mark.parametrize(
    ("initial", "within"),
    [
        (1.0, 6),  # from keeping everything (no strategies file): one step down, then settled
        (0.001, 40),  # from far below: increases capped at doubling, one per settling period
    ],
)
def test_two_operations_ten_times_apart_converge_to_the_target(initial: float, within: int) -> None:
    """The issue's acceptance: 10 and 100 requests/s, the sampled rate fed back each interval; both
    yield the target (1 trace/s) within the tolerance in K intervals and stay there."""
    config = replace(CONFIG, initial_probability=initial)
    sim = Simulation(config)
    real = {SLOW: 10.0, FAST: 100.0}
    clients = Clients(real, initial=initial, lag_s=config.settle_s)
    history = run(clients, sim.store.aggregates, sim.tick, START_S, minutes=within + 30)

    at = converged(history, real, config.tolerance)
    assert at is not None and at <= within, [{k[1]: round(v, 5) for k, v in h.items()} for h in history]
    final = sim.operations()
    assert final[SLOW].probability == pytest.approx(0.1, rel=0.3)
    assert final[FAST].probability == pytest.approx(0.01, rel=0.3)
    # The real rate is recovered from the sampled one: observed / probability.
    assert final[SLOW].estimated_tps == pytest.approx(10.0, rel=0.3)
    assert final[FAST].estimated_tps == pytest.approx(100.0, rel=0.3)
    # What was stored (sampled) over the last 20 minutes: the target, for both, within the tolerance.
    for key in real:
        stored_tps = sum(minute[key] for minute in clients.sampled[-20:]) / (20 * 60)
        assert stored_tps == pytest.approx(config.target_tps, rel=config.tolerance), key
    # Converged means quiet: no probability moves over the last 20 intervals.
    assert all(h == history[-1] for h in history[-20:])


def test_the_probability_never_goes_below_the_minimum() -> None:
    assert next_probability(0.01, observed_tps=1_000_000.0, config=CONFIG) == CONFIG.min_probability


def test_within_the_tolerance_the_probability_holds() -> None:
    assert next_probability(0.2, observed_tps=1.25, config=CONFIG) == 0.2
    assert next_probability(0.2, observed_tps=0.75, config=CONFIG) == 0.2


def test_a_decrease_is_immediate_an_increase_at_most_doubles_and_one_is_the_ceiling() -> None:
    assert next_probability(0.5, observed_tps=5.0, config=CONFIG) == pytest.approx(0.1)
    assert next_probability(0.01, observed_tps=0.1, config=CONFIG) == pytest.approx(0.02)
    assert next_probability(0.01, observed_tps=0.0, config=CONFIG) == pytest.approx(0.02)
    assert next_probability(0.8, observed_tps=0.1, config=CONFIG) == 1.0


def test_the_floor_of_one_trace_per_interval_raises_a_lower_target() -> None:
    """A target below one trace per operation per interval is raised to it; the floor is also what
    the source says clients must keep at least (their lower-bound traces per second)."""
    config = replace(CONFIG, target_tps=0.001, interval_s=60.0)
    assert config.floor_tps == pytest.approx(1 / 60)
    # 1 trace/s observed at 0.5: to yield 1/60 trace/s the probability goes to 0.5/60, not 0.5/1000.
    assert next_probability(0.5, observed_tps=1.0, config=config) == pytest.approx(0.5 / 60)
    source = AdaptiveSampling(MemorySampling(), config)
    assert source.lower_bound_tps() == pytest.approx(1 / 60)


def test_a_service_with_no_traffic_has_no_probabilities_and_an_idle_operation_climbs_back() -> None:
    sim = Simulation()
    clients = Clients({SLOW: 10.0}, initial=1.0, lag_s=CONFIG.settle_s)
    run(clients, sim.store.aggregates, sim.tick, START_S, minutes=10)
    served = sim.source.probabilities("shop")
    assert served is not None and list(served) == ["POST /checkout"]
    assert served["POST /checkout"] == pytest.approx(0.1, rel=0.3)
    assert sim.source.probabilities("nobody-calls-me") is None
    assert sim.source.default_probability() == CONFIG.initial_probability
    # The operation goes quiet: nothing observed is no evidence of a low rate; like Jaeger, the
    # probability doubles each settled step, so a returning operation is not stuck at a tiny one.
    clients.real_tps[SLOW] = 0.0
    history = run(clients, sim.store.aggregates, sim.tick, START_S + 600, minutes=60)
    assert history[-1][SLOW] == 1.0
    assert all(a <= b for a, b in zip([h[SLOW] for h in history], [h[SLOW] for h in history][1:], strict=False))


def test_an_operation_without_traffic_for_a_week_is_forgotten() -> None:
    old = OperationSampling("shop", "GET /gone", 0.5, 1.0, 2.0, changed_at_s=0.0, last_seen_s=1000.0)
    end = 1000.0 + 7 * 86400 + 60
    assert compute([old], {}, end, end + 30, CONFIG) == ()
    assert len(compute([old], {}, end - 120, end, CONFIG)) == 1


def test_only_server_spans_of_services_taking_root_calls_count() -> None:
    """Head sampling decides at the root: the service graph's ``user`` calls say which services take
    root requests; a service only ever called by others gets no probabilities (clients are
    parent-based, so it would never use them)."""
    store = MemoryStore()
    write_minute(store.aggregates, START_S, {("edge", "GET /"): 30}, "p", 1)
    snapshot = Snapshot(seq=2)
    minute_ns = START_S * 1_000_000_000
    snapshot.spans[(minute_ns, ("backend", "GET /item", int(SpanKind.SERVER), 0))] = stats(30)
    snapshot.spans[(minute_ns, ("edge", "SELECT", int(SpanKind.CLIENT), 0))] = stats(30)
    snapshot.spans[(minute_ns, ("edge", OVERFLOW_LABEL, int(SpanKind.SERVER), 0))] = stats(5)
    snapshot.edges[(minute_ns, ("edge", "backend", ""))] = stats(30)
    store.aggregates.write(snapshot, "p")
    assert observe(store.aggregates, START_S, START_S + 60) == {("edge", "GET /"): {float(START_S): 30}}
    assert observe(store.aggregates, START_S + 60, START_S + 120) == {}


def test_every_process_serves_the_stored_output_re_read_every_interval() -> None:
    clock = Clock()
    sampling = MemorySampling(clock)
    source = AdaptiveSampling(sampling, CONFIG, clock)
    assert source.probabilities("shop") is None
    ops = (OperationSampling("shop", "GET /", 0.25, 1.0, 4.0, START_S, START_S),)
    assert sampling.write_state(SamplingState(START_S, START_S, "other", ops), None)
    clock.now += CONFIG.interval_s - 1
    assert source.probabilities("shop") is None  # cached
    clock.now += 1
    assert source.probabilities("shop") == {"GET /": 0.25}


def test_one_lease_holder_computes_each_window_and_another_takes_over_after_expiry() -> None:
    clock = Clock()
    store = MemoryStore()
    sampling = MemorySampling(clock)
    runners = [
        AdaptiveRunner(sampling, store.aggregates, AdaptiveSampling(sampling, CONFIG, clock), CONFIG, name, clock)
        for name in ("a", "b")
    ]
    computed: dict[str, int] = {"a": 0, "b": 0}
    for minute in range(5):
        clock.now = START_S + minute * 60 + 35
        for runner in runners:
            computed[runner.holder] += runner.tick()
    assert computed == {"a": 5, "b": 0}
    # "a" dies without a word: "b" waits out the lease, then computes.
    last_renewal = clock.now
    while not runners[1].tick():
        clock.now += 60
    assert clock.now - last_renewal >= CONFIG.lease_ttl_s
    # "b" stops cleanly: it gives the lease up and "a" computes the very next window.
    runners[1].stop()
    clock.now += 60
    assert runners[0].tick()
