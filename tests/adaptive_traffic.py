"""Simulated root traffic for the adaptive sampler's tests, written as the service-graph stage writes it.

A client library samples each root request with the probability it last fetched; the sampled ones
become span metrics (one SERVER span per root, per minute and operation) and a ``user`` call to the
service. The tests feed the sampler's own output back through this, interval after interval.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from tracesearch.model import SpanKind, StatusCode
from tracesearch.servicegraph.aggregator import Snapshot, Stats
from tracesearch.servicegraph.model import USER
from tracesearch.storage.contracts import AggregateWriter

NS_PER_S = 1_000_000_000
MINUTE_S = 60

Key = tuple[str, str]  # service, operation


def stats(calls: int) -> Stats:
    one = Stats()
    one.calls = calls
    one.sum_ns = calls * 1_000_000
    one.buckets = {0: calls} if calls else {}
    return one


def write_minute(writer: AggregateWriter, minute_s: int, sampled: Mapping[Key, int], process: str, seq: int) -> None:
    """Store one minute's sampled root spans per operation, and their ``user`` calls per service."""
    minute_ns = minute_s * NS_PER_S
    snapshot = Snapshot(seq=seq)
    per_service: dict[str, int] = {}
    for (service, operation), calls in sampled.items():
        if calls:
            labels = (service, operation, int(SpanKind.SERVER), int(StatusCode.UNSET))
            snapshot.spans[(minute_ns, labels)] = stats(calls)
            per_service[service] = per_service.get(service, 0) + calls
    for service, calls in per_service.items():
        snapshot.edges[(minute_ns, (USER, service, ""))] = stats(calls)
    if snapshot:
        writer.write(snapshot, process)


def sample(rng: random.Random, real_tps: float, probability: float) -> int:
    """Sampled requests of one minute: Poisson arrivals thinned by ``probability`` (normal approximation
    above 30 expected; exact by counting below)."""
    expected = real_tps * MINUTE_S * probability
    if expected < 30:
        # Poisson by inversion of exponential gaps: exact, and cheap at this size.
        count, total = 0, rng.expovariate(1.0)
        while total < expected:
            count += 1
            total += rng.expovariate(1.0)
        return count
    return max(0, round(rng.gauss(expected, expected**0.5)))


class Clients:
    """The instrumented services: each minute they sample at the probabilities they last fetched,
    ``lag_s`` after the sampler stored them (processes' caches, then the clients' polls)."""

    def __init__(self, real_tps: Mapping[Key, float], initial: float, lag_s: float, seed: int = 7):
        self.real_tps = dict(real_tps)
        self.initial = initial
        self.lag_s = lag_s
        self.rng = random.Random(seed)
        self.published: list[tuple[float, dict[Key, float]]] = []  # (stored at, probabilities)
        self.sampled: list[dict[Key, int]] = []  # per minute: the traces stored

    def publish(self, at_s: float, probabilities: Mapping[Key, float]) -> None:
        self.published.append((at_s, dict(probabilities)))

    def probability(self, key: Key, at_s: float) -> float:
        for stored_at, probabilities in reversed(self.published):
            if stored_at + self.lag_s <= at_s and key in probabilities:
                return probabilities[key]
        return self.initial

    def minute(self, writer: AggregateWriter, minute_s: int, seq: int) -> None:
        # The middle of the minute stands for it: clients switch within a minute at worst.
        sampled = {
            key: sample(self.rng, tps, self.probability(key, minute_s + MINUTE_S / 2))
            for key, tps in self.real_tps.items()
        }
        self.sampled.append(sampled)
        write_minute(writer, minute_s, sampled, "simulated", seq)


def run(
    clients: Clients,
    writer: AggregateWriter,
    tick: Callable[[float], Mapping[Key, float] | None],
    start_s: int,
    minutes: int,
) -> list[dict[Key, float]]:
    """Minute by minute: the clients' traffic, then the sampler's tick 5 s into the next minute (what it
    stored, or None when it computed nothing). Returns the probabilities after each tick."""
    history = []
    current: dict[Key, float] = {}
    for i in range(minutes):
        minute_s = start_s + i * MINUTE_S
        clients.minute(writer, minute_s, seq=minute_s // MINUTE_S)  # unique: a repeated seq is a retry
        now = minute_s + MINUTE_S + 5
        stored = tick(now)
        if stored is not None:
            clients.publish(now, stored)
            current = dict(stored)
        history.append(current)
    return history
