"""The promises of ``contracts.SamplingStore``, run against the in-memory twin (unit tier) and
Elasticsearch (integration tier). A module subclasses ``SamplingStoreConformance`` and provides
``make_store``: a new store on a fresh index, reading the given clock; several calls in one test
return stores over the same data, as several processes would see it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tracesearch.storage.contracts import OperationSampling, SamplingState, SamplingStore

MakeStore = Callable[[Callable[[], float]], SamplingStore]
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def state(window_end_s: float, *probabilities: float, holder: str = "a") -> SamplingState:
    ops = tuple(
        OperationSampling("shop", f"op{i}", p, 0.5, 0.5 / p, changed_at_s=T0, last_seen_s=window_end_s)
        for i, p in enumerate(probabilities)
    )
    return SamplingState(window_end_s=window_end_s, computed_at_s=window_end_s + 30, holder=holder, operations=ops)


class SamplingStoreConformance:
    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    def test_one_holder_at_a_time_renewed_by_it_taken_after_expiry(self, make_store: MakeStore, clock: Clock) -> None:
        a, b = make_store(clock), make_store(clock)
        assert a.acquire_lease("a", ttl_s=180)
        assert not b.acquire_lease("b", ttl_s=180)
        clock.now += 120
        assert a.acquire_lease("a", ttl_s=180)  # renewed: now until +300
        clock.now += 179
        assert not b.acquire_lease("b", ttl_s=180)
        clock.now += 2
        assert b.acquire_lease("b", ttl_s=180)
        assert not a.acquire_lease("a", ttl_s=180)

    def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(
        self, make_store: MakeStore, clock: Clock
    ) -> None:
        a, b = make_store(clock), make_store(clock)
        assert a.acquire_lease("a", ttl_s=180)
        b.release_lease("b")  # not b's: nothing happens
        assert not b.acquire_lease("b", ttl_s=180)
        a.release_lease("a")
        assert b.acquire_lease("b", ttl_s=180)

    def test_the_output_is_read_back_whole_and_written_only_over_the_version_read(
        self, make_store: MakeStore, clock: Clock
    ) -> None:
        a, b = make_store(clock), make_store(clock)
        assert a.read_state() == (None, None)
        first = state(T0, 0.5, 0.01)
        assert a.write_state(first, None)
        assert not b.write_state(state(T0, 0.9), None)  # created meanwhile
        read, version = b.read_state()
        assert read == first
        assert b.write_state(state(T0 + 60, 0.25, holder="b"), version)
        assert not a.write_state(state(T0 + 60, 0.75), version)  # a stale version: refused, nothing written
        assert make_store(clock).read_state()[0] == state(T0 + 60, 0.25, holder="b")
