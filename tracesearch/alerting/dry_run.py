"""``tracesearch alerts test``: what a rules file would have fired over a past stretch of time, without
storing state or notifying anyone.

Each rule is evaluated as the scheduler would, at steps from ``now - since`` to ``now``, and its label sets
go through the same conditions as the state machine's: a label set that breaches the threshold for
``for`` starts firing, and keeps firing ``keep_firing_for`` after it stops breaching. At most
``MAX_STEPS`` evaluations per rule: over a long stretch the steps grow (a coarser look, not a slower one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tracesearch.alerting.evaluate import Sample
from tracesearch.alerting.rules import Rule

NS_PER_S = 1_000_000_000
MAX_STEPS = 60



class Evaluate(Protocol):
    def evaluate(self, rule: Rule, now_ns: int) -> list[Sample]:
        """The rule's value per label set over its window ending at ``now_ns`` (the group_by labels)."""


@dataclass(frozen=True)
class WouldFire:
    rule: Rule
    labels: Mapping[str, str] = field(hash=False)
    value: float  # the value furthest past the threshold while it fired
    started_ns: int  # when it would have started firing
    firing_now: bool  # still firing at the last step


@dataclass
class _Track:
    breach_since_ns: int | None = None
    last_breach_ns: int | None = None
    firing_since_ns: int | None = None
    worst: float | None = None
    fired_at_ns: int | None = None


def steps(now_ns: int, since_s: float, step_s: float) -> list[int]:
    """Evaluation times, oldest first, ending at ``now_ns``."""
    step_ns = int(max(step_s, since_s / MAX_STEPS) * NS_PER_S)
    start_ns = now_ns - int(since_s * NS_PER_S)
    count = max(1, (now_ns - start_ns) // step_ns + 1)
    return [now_ns - step_ns * (count - 1 - k) for k in range(count)]


def dry_run(rules: Sequence[Rule], evaluator: Evaluate, now_ns: int, since_s: float, step_s: float) -> list[WouldFire]:
    """Every label set of every rule that would have fired in the stretch, by rule then labels."""
    fired: list[WouldFire] = []
    times = steps(now_ns, since_s, step_s)
    for rule in rules:
        fired.extend(_rule(rule, evaluator, times))
    return fired


def _rule(rule: Rule, evaluator: Evaluate, times: list[int]) -> list[WouldFire]:
    tracks: dict[tuple[tuple[str, str], ...], _Track] = {}
    for at_ns in times:
        samples = evaluator.evaluate(rule, at_ns)
        breached = {_key(s.labels): s.value for s in samples if rule.breached(s.value)}
        for key in breached.keys() | tracks.keys():
            _advance(rule, tracks.setdefault(key, _Track()), at_ns, breached.get(key))
    return [
        WouldFire(rule, dict(key), track.worst, track.fired_at_ns, track.firing_since_ns is not None)
        for key, track in sorted(tracks.items())
        if track.fired_at_ns is not None and track.worst is not None
    ]


def _advance(rule: Rule, track: _Track, at_ns: int, value: float | None) -> None:
    if value is not None:
        track.last_breach_ns = at_ns
        if track.breach_since_ns is None:
            track.breach_since_ns = at_ns
        if track.firing_since_ns is None and at_ns - track.breach_since_ns >= rule.for_s * NS_PER_S:
            track.firing_since_ns = at_ns
            track.fired_at_ns = track.fired_at_ns or at_ns
        if track.firing_since_ns is not None:
            track.worst = value if track.worst is None else _worse(rule, track.worst, value)
        return
    track.breach_since_ns = None
    quiet_ns = at_ns - (track.last_breach_ns or at_ns)
    if track.firing_since_ns is not None and quiet_ns > rule.keep_firing_for_s * NS_PER_S:
        track.firing_since_ns = None


def _worse(rule: Rule, a: float, b: float) -> float:
    return max(a, b) if rule.op in (">", ">=") else min(a, b)


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))
