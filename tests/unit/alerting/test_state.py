"""The alert state machine: ok → pending → firing → resolved → ok, with ``for`` and ``keep_firing_for``."""

from __future__ import annotations

from tracesearch.alerting.state import (
    FIRING,
    OK,
    PENDING,
    RESOLVED,
    AlertState,
    Timing,
    Transition,
    step,
)

S = 1_000_000_000
LABELS = {"service": "checkout"}


class Machine:
    """Feeds one alert evaluation after evaluation, keeping its state like the runner does."""

    def __init__(self, timing: Timing):
        self.timing = timing
        self.state: AlertState | None = None
        self.transitions: list[Transition] = []

    def at(self, second: int, value: float | None, threshold: float = 1.0) -> str:
        condition = value is not None and value > threshold
        self.state, found = step(self.state, "p95", LABELS, condition, value, second * S, self.timing)
        self.transitions += found
        return self.state.state if self.state else OK

    def path(self) -> list[tuple[str, str, int]]:
        return [(t.previous, t.state, t.at_ns // S) for t in self.transitions]


def test_without_for_an_alert_fires_at_once_and_resolves_when_the_condition_ends() -> None:
    m = Machine(Timing())
    assert [m.at(0, 0.5), m.at(10, 2.0), m.at(20, 3.0), m.at(30, 0.5), m.at(40, 0.5)] == [
        OK, FIRING, FIRING, RESOLVED, OK,
    ]  # fmt: skip
    assert m.path() == [(OK, FIRING, 10), (FIRING, RESOLVED, 30), (RESOLVED, OK, 40)]
    firing, resolved = m.transitions[0], m.transitions[1]
    assert firing.starts_at_ns == 10 * S and firing.value == 2.0
    assert resolved.starts_at_ns == 10 * S and resolved.ends_at_ns == 30 * S and resolved.value == 0.5


def test_for_keeps_an_alert_pending_until_the_condition_held_that_long() -> None:
    m = Machine(Timing(for_s=30))
    states = [m.at(t, 2.0) for t in (0, 10, 20, 29, 30, 40)]
    assert states == [PENDING, PENDING, PENDING, PENDING, FIRING, FIRING]
    assert m.path() == [(OK, PENDING, 0), (PENDING, FIRING, 30)]
    assert m.transitions[1].starts_at_ns == 30 * S  # firing starts when it fired, not when pending began


def test_a_pending_alert_whose_condition_ends_goes_back_to_ok_without_firing() -> None:
    m = Machine(Timing(for_s=30))
    assert [m.at(0, 2.0), m.at(10, 0.5), m.at(20, 2.0), m.at(40, 2.0), m.at(50, 2.0)] == [
        PENDING, OK, PENDING, PENDING, FIRING,
    ]  # fmt: skip
    # The `for` clock restarted at 20: the condition must hold 30 s without a break.
    assert m.path() == [(OK, PENDING, 0), (PENDING, OK, 10), (OK, PENDING, 20), (PENDING, FIRING, 50)]


def test_keep_firing_for_holds_a_firing_alert_through_short_dips() -> None:
    m = Machine(Timing(keep_firing_for_s=30))
    assert m.at(0, 2.0) == FIRING
    assert [m.at(t, 0.5) for t in (10, 20, 29)] == [FIRING, FIRING, FIRING]
    assert m.at(30, 0.5) == RESOLVED  # 30 s after the condition last held (at 0)
    assert m.path() == [(OK, FIRING, 0), (FIRING, RESOLVED, 30)]


def test_flapping_inside_keep_firing_for_fires_once() -> None:
    m = Machine(Timing(keep_firing_for_s=20))
    values = [2.0, 0.5, 2.0, 0.5, 2.0, 0.5, 2.0]
    assert {m.at(10 * i, v) for i, v in enumerate(values)} == {FIRING}
    assert m.path() == [(OK, FIRING, 0)]
    assert [m.at(70, 0.5), m.at(80, 0.5)] == [FIRING, RESOLVED]  # last true at 60


def test_flapping_without_keep_firing_for_fires_and_resolves_each_time() -> None:
    m = Machine(Timing())
    for i, v in enumerate([2.0, 0.5, 2.0]):
        m.at(10 * i, v)
    assert m.path() == [(OK, FIRING, 0), (FIRING, RESOLVED, 10), (RESOLVED, FIRING, 20)]
    assert m.transitions[2].starts_at_ns == 20 * S  # a new alert, with its own start


def test_a_label_set_that_disappears_counts_as_false() -> None:
    """No sample (no spans for the group in the window): pending goes back to ok, firing resolves once
    keep_firing_for passed, the last value kept."""
    m = Machine(Timing(keep_firing_for_s=15))
    assert [m.at(0, 2.0), m.at(10, None), m.at(20, None)] == [FIRING, FIRING, RESOLVED]
    assert m.transitions[-1].value == 2.0
    pending = Machine(Timing(for_s=60))
    assert [pending.at(0, 2.0), pending.at(10, None)] == [PENDING, OK]


def test_a_state_loaded_after_a_restart_goes_on_without_firing_again() -> None:
    first = Machine(Timing(for_s=10))
    first.at(0, 2.0)
    first.at(10, 2.0)
    assert first.path()[-1] == (PENDING, FIRING, 10)
    restarted = Machine(Timing(for_s=10))
    restarted.state = first.state  # what the store gave back
    assert [restarted.at(20, 2.0), restarted.at(30, 2.0)] == [FIRING, FIRING]
    assert restarted.transitions == []
    assert restarted.at(40, 0.5) == RESOLVED
    assert restarted.transitions[0].starts_at_ns == 10 * S


def test_the_fingerprint_is_the_rule_and_label_set_in_any_order() -> None:
    a = AlertState("r", {"a": "1", "b": "2"}, FIRING, 1.0)
    b = AlertState("r", {"b": "2", "a": "1"}, FIRING, 1.0)
    c = AlertState("other", {"a": "1", "b": "2"}, FIRING, 1.0)
    assert a.fingerprint == b.fingerprint != c.fingerprint
