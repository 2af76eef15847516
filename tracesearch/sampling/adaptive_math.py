"""The adaptive head-sampling computation, pure: observed sampled rates in, probabilities out.

Jaeger's adaptive sampler (``internal/sampling/samplingstrategy/adaptive``: ``PostAggregator`` and
``PercentageIncreaseCappedCalculator``) computes, per service and root operation,
``new = old * target / observed`` where ``observed`` is the *sampled* throughput, i.e. it estimates the
real rate as ``observed / old`` and asks for ``target / real``. It keeps ``old`` when ``observed`` is
within a tolerance of the target, lets a decrease happen at once (oversampling costs storage) but caps
an increase (at most doubling), doubles on no traffic, and clamps to [minimum, 1]. We do the same, with
two differences, both for the same reason (we cannot see which probability a span was sampled with;
Jaeger reads the client's ``sampler.param`` tag and holds when it does not match):

- **Settling instead of ``sampler.param``.** A new probability reaches clients only after every process
  re-read it and every client polled (``settle_s``); a window that began before then mixes the old and
  the new probability, so the operation keeps its probability and waits for a clean window. Without
  this, the lag makes the loop overshoot (``old`` divided into traffic sampled at an older ``old``).
- **Settled minutes, unweighted.** Jaeger averages up to 10 one-minute buckets weighted towards the
  newest (w = i^4), whatever probability each was sampled at. We average, unweighted, the minutes of
  the last ten that were wholly sampled at the current probability (at least two: one minute at the
  default target is ~60 traces, ±13% of noise), so the estimate sharpens the longer a probability
  holds, and a probability at the edge of the tolerance is not knocked out of it by one noisy minute.

The floor (one trace per operation per interval) is a lower bound on traces per second, served to
clients as ``defaultLowerBoundTracesPerSecond`` (their guaranteed-throughput sampler keeps that many
whatever the probability); here it raises the target when the target is below it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tracesearch.settings import Settings
from tracesearch.storage.contracts import OperationSampling

# An increase is capped at +100% per step (Jaeger builds its calculator with 1.0): a rate that looks
# low may be noise or lag, and undershooting costs less than a flood of traces.
MAX_INCREASE = 1.0
# Minutes averaged at most (Jaeger's 10 one-minute buckets), and at least before a step: one minute
# of a 1 trace/s target is ~60 traces, ±13% of noise; the tolerance should not see that as a change.
HISTORY_MINUTES = 10
MIN_SETTLED_MINUTES = 2
# An operation without traffic for this long is dropped from the output (a renamed or removed endpoint).
FORGET_AFTER_S = 7 * 86400.0
MINUTE_S = 60.0

OperationKey = tuple[str, str]  # service, operation


@dataclass(frozen=True, slots=True)
class AdaptiveConfig:
    target_tps: float = 1.0
    min_probability: float = 1e-5
    tolerance: float = 0.3
    initial_probability: float = 1.0
    interval_s: float = 60.0
    delay_s: float = 30.0
    client_refresh_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AdaptiveConfig:
        return cls(
            target_tps=settings.sampling_target_tps,
            min_probability=settings.sampling_min_probability,
            tolerance=settings.sampling_adaptive_tolerance,
            initial_probability=settings.sampling_adaptive_initial_probability,
            interval_s=settings.sampling_adaptive_interval_s,
            delay_s=settings.sampling_adaptive_delay_s,
            client_refresh_s=settings.sampling_client_refresh_s,
        )

    @property
    def window_s(self) -> float:
        """The span metrics have one-minute resolution: a window is the interval in whole minutes."""
        return max(1, math.ceil(self.interval_s / MINUTE_S)) * MINUTE_S

    @property
    def history_s(self) -> float:
        """The minutes read per computation: ten, or the interval's if longer."""
        return max(HISTORY_MINUTES * MINUTE_S, self.window_s)

    @property
    def floor_tps(self) -> float:
        """One trace per operation per interval."""
        return 1.0 / self.interval_s

    @property
    def settle_s(self) -> float:
        """From a change to every client following it: every process re-reads the output within an
        interval, then every client polls within its refresh."""
        return self.interval_s + self.client_refresh_s

    @property
    def lease_ttl_s(self) -> float:
        """The holder renews every interval; three intervals let it miss one or two renewals (a slow
        Elasticsearch, a pause) without a takeover, and bound clock skew between hosts we tolerate."""
        return 3 * self.interval_s


def window(now_s: float, config: AdaptiveConfig) -> tuple[float, float]:
    """[start, end) of the minutes read at ``now_s``: whole minutes that ended at least ``delay_s`` ago,
    ``history_s`` of them."""
    end = math.floor((now_s - config.delay_s) / MINUTE_S) * MINUTE_S
    return end - config.history_s, end


def next_probability(old: float, observed_tps: float, config: AdaptiveConfig) -> float:
    """Jaeger's step: hold within the tolerance, jump down, climb at most ``MAX_INCREASE``, double on
    nothing observed; clamped to [min_probability, 1]."""
    target = max(config.target_tps, config.floor_tps)
    if abs(observed_tps - target) / target < config.tolerance:
        return old
    highest = old * (1.0 + MAX_INCREASE)
    new = highest if observed_tps <= 0 else min(old * target / observed_tps, highest)
    return min(1.0, max(config.min_probability, new))


def compute(
    previous: Iterable[OperationSampling],
    counts: Mapping[OperationKey, Mapping[float, int]],
    window_end_s: float,
    now_s: float,
    config: AdaptiveConfig,
) -> tuple[OperationSampling, ...]:
    """The next probabilities. ``counts`` holds, per root operation, its sampled traces per minute
    (by the minute's start) of the ``history_s`` before ``window_end_s``; minutes not there had none,
    and so had operations known before and absent there. ``now_s`` is when the result is stored: a
    changed probability counts from then."""
    known = {(op.service, op.operation): op for op in previous}
    result = []
    for key in sorted(known.keys() | counts.keys()):
        op = _step(known.get(key), key, counts.get(key, {}), window_end_s, now_s, config)
        if op is not None:
            result.append(op)
    return tuple(result)


def _step(
    old: OperationSampling | None,
    key: OperationKey,
    per_minute: Mapping[float, int],
    window_end_s: float,
    now_s: float,
    config: AdaptiveConfig,
) -> OperationSampling | None:
    if old is None:
        # Never computed: clients sampled it at the default we serve for unknown operations, from its
        # first minute with traffic (earlier minutes say nothing about its rate).
        first = min(per_minute, default=window_end_s)
        old = OperationSampling(key[0], key[1], config.initial_probability, 0.0, 0.0, first - config.settle_s, 0.0)
    seen = [minute for minute, calls in per_minute.items() if calls > 0]
    last_seen = max(seen) + MINUTE_S if seen else old.last_seen_s
    if window_end_s - last_seen > FORGET_AFTER_S:
        return None
    # Only minutes wholly under the current probability say what it yields.
    settled_from = old.changed_at_s + config.settle_s
    minutes = [m for m in _minutes(window_end_s, config) if m >= settled_from]
    if len(minutes) < MIN_SETTLED_MINUTES:
        return OperationSampling(
            *key, old.probability, old.observed_tps, old.estimated_tps, old.changed_at_s, last_seen
        )
    observed = sum(per_minute.get(m, 0) for m in minutes) / (len(minutes) * MINUTE_S)
    probability = next_probability(old.probability, observed, config)
    changed_at = now_s if probability != old.probability else old.changed_at_s
    return OperationSampling(*key, probability, observed, observed / old.probability, changed_at, last_seen)


def _minutes(window_end_s: float, config: AdaptiveConfig) -> list[float]:
    return [window_end_s - config.history_s + i * MINUTE_S for i in range(int(config.history_s // MINUTE_S))]
