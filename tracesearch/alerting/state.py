"""The alert state machine, per rule and label set: pure, no clock and no store of its own.

ok → pending (condition true, ``for`` not yet elapsed) → firing → resolved (condition false for
``keep_firing_for``) → ok. With ``for`` 0 an alert goes from ok straight to firing. A pending alert whose
condition turns false goes back to ok without having fired; a firing one whose condition turns true again
within ``keep_firing_for`` stays firing (flapping is absorbed, no second notification).

A label set that disappears (no sample this evaluation: no spans in the window for that group) counts as
the condition being false, as Prometheus treats a series that vanished: pending goes back to ok and
firing resolves once ``keep_firing_for`` has passed. ``resolved`` is kept for one evaluation, so the
store and the history show it; then ok.

Every change of state is returned as an ``Transition``; the runner stores them as events and hands those
to firing and to resolved to the dispatcher.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tracesearch.alerting.views import AlertEvent, AlertView

OK, PENDING, FIRING, RESOLVED = "ok", "pending", "firing", "resolved"
STATES = (OK, PENDING, FIRING, RESOLVED)
NS_PER_S = 1_000_000_000


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """Stable id of an alert: the rule and its label set (sorted), hashed; the same in every process."""
    text = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AlertState:
    """What is remembered of one alert between evaluations (what the store keeps)."""

    rule: str
    labels: Mapping[str, str]
    state: str
    value: float  # the last value observed (the last true one while firing)
    active_since_ns: int = 0  # when the condition turned true (pending started)
    firing_since_ns: int = 0  # when it started firing (0: never)
    last_true_ns: int = 0  # the last evaluation at which the condition held
    resolved_at_ns: int = 0
    fingerprint: str = field(default="")
    # Shown by the API, not used by the machine: set by the runner.
    threshold: float = 0.0
    op: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    example_trace_ids: tuple[str, ...] = ()
    evaluated_at_ns: int = 0

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.rule, self.labels))


@dataclass(frozen=True)
class Transition:
    """One change of state of one alert, at one evaluation."""

    rule: str
    fingerprint: str
    labels: Mapping[str, str]
    previous: str
    state: str
    at_ns: int
    value: float
    starts_at_ns: int  # when it started firing (for pending: when it became pending)
    ends_at_ns: int = 0  # set on resolved
    severity: str = ""  # the rule's, set by the runner (Grafana shows it as a tag)
    threshold: float = 0.0
    op: str = ""
    example_trace_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timing:
    """The rule's durations the machine needs, in seconds."""

    for_s: float = 0.0
    keep_firing_for_s: float = 0.0


def step(
    previous: AlertState | None,
    rule: str,
    labels: Mapping[str, str],
    condition: bool,
    value: float | None,
    now_ns: int,
    timing: Timing,
) -> tuple[AlertState | None, list[Transition]]:
    """The next state of one alert and the transitions on the way; None: ok (nothing to remember).

    ``value`` None: the label set had no sample (treated as the condition being false)."""
    current = previous.state if previous is not None and previous.state != RESOLVED else OK
    if previous is not None and previous.state == RESOLVED and not condition:
        return None, [_transition(previous, OK, now_ns, value)]
    if condition and value is not None:
        new, transitions = _when_true(previous if current != OK else None, rule, labels, value, now_ns, timing)
        if previous is not None and previous.state == RESOLVED:  # a new alert, straight from resolved
            transitions = [replace(t, previous=RESOLVED) for t in transitions]
        return new, transitions
    if previous is None or current == OK:
        return None, []
    return _when_false(previous, now_ns, value, timing)


def _when_true(
    previous: AlertState | None, rule: str, labels: Mapping[str, str], value: float, now_ns: int, timing: Timing
) -> tuple[AlertState, list[Transition]]:
    if previous is None:
        pending = AlertState(rule, dict(labels), PENDING, value, active_since_ns=now_ns, last_true_ns=now_ns)
        if timing.for_s > 0:
            return pending, [_transition(pending, PENDING, now_ns, value, from_state=OK)]
        firing = replace(pending, state=FIRING, firing_since_ns=now_ns)
        return firing, [_transition(firing, FIRING, now_ns, value, from_state=OK)]
    updated = replace(previous, value=value, last_true_ns=now_ns)
    if previous.state == PENDING and now_ns - previous.active_since_ns >= timing.for_s * NS_PER_S:
        firing = replace(updated, state=FIRING, firing_since_ns=now_ns)
        return firing, [_transition(firing, FIRING, now_ns, value, from_state=PENDING)]
    return updated, []


def _when_false(
    previous: AlertState, now_ns: int, value: float | None, timing: Timing
) -> tuple[AlertState | None, list[Transition]]:
    if previous.state == PENDING:
        return None, [_transition(previous, OK, now_ns, value)]
    # Firing: hold on for keep_firing_for after the condition last held.
    if now_ns - previous.last_true_ns < timing.keep_firing_for_s * NS_PER_S:
        return previous, []
    shown = previous.value if value is None else value
    resolved = replace(previous, state=RESOLVED, value=shown, resolved_at_ns=now_ns)
    return resolved, [_transition(resolved, RESOLVED, now_ns, shown, from_state=FIRING)]


def _transition(
    alert: AlertState, to: str, now_ns: int, value: float | None, from_state: str | None = None
) -> Transition:
    starts = alert.firing_since_ns or alert.active_since_ns
    return Transition(
        rule=alert.rule,
        fingerprint=alert.fingerprint,
        labels=alert.labels,
        previous=from_state or alert.state,
        state=to,
        at_ns=now_ns,
        value=alert.value if value is None else value,
        starts_at_ns=starts,
        ends_at_ns=now_ns if to == RESOLVED else 0,
    )


def view(alert: AlertState) -> AlertView:
    """What the API shows of a current alert (``views.AlertView``, helper A's read model)."""
    return AlertView(
        rule=alert.rule,
        fingerprint=alert.fingerprint,
        labels=alert.labels,
        annotations=alert.annotations,
        state=alert.state,
        value=alert.value,
        threshold=alert.threshold,
        op=alert.op,
        active_since_ns=alert.active_since_ns,
        firing_since_ns=alert.firing_since_ns or None,
        evaluated_at_ns=alert.evaluated_at_ns,
        example_trace_ids=alert.example_trace_ids,
    )


def event(transition: Transition) -> AlertEvent:
    """What the API's history shows of a transition (``views.AlertEvent``)."""
    return AlertEvent(
        rule=transition.rule,
        fingerprint=transition.fingerprint,
        labels=transition.labels,
        state=transition.state,
        previous=transition.previous,
        at_ns=transition.at_ns,
        value=transition.value,
        threshold=transition.threshold,
        op=transition.op,
        example_trace_ids=transition.example_trace_ids,
    )


def is_current(alert: AlertState) -> bool:
    return alert.state in (PENDING, FIRING)
