"""What the alerts API and ``tracesearch alerts list`` show of the alert state: current alerts and the
events of their transitions, read through ``AlertStateReader`` (the read half of the state store the
evaluator writes). Times are nanoseconds since the epoch, UTC, as everywhere in tracesearch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# The states an alert (a rule and one label set) goes through; "ok" is the absence of an alert.
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"
STATES = ("ok", PENDING, FIRING, RESOLVED)


@dataclass(frozen=True)
class AlertView:
    """One alert now: a rule's label set whose condition holds (pending) or held long enough (firing).
    Resolved alerts are no longer current: they are in the history."""

    rule: str
    fingerprint: str  # stable id of (rule, labels)
    labels: Mapping[str, str] = field(hash=False)  # rule labels + group_by values + alertname + severity
    annotations: Mapping[str, str] = field(hash=False)  # rendered
    state: str  # PENDING | FIRING
    value: float  # at the last evaluation
    threshold: float
    op: str
    active_since_ns: int  # when the condition started to hold (entered pending)
    firing_since_ns: int | None  # when it started firing (None while pending)
    evaluated_at_ns: int  # the last evaluation that saw it
    example_trace_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertEvent:
    """One transition of one alert, as stored (and shown to Grafana as an annotation)."""

    rule: str
    fingerprint: str
    labels: Mapping[str, str] = field(hash=False)
    state: str  # the state entered: PENDING | FIRING | RESOLVED | "ok" (pending that never fired)
    previous: str  # the state left
    at_ns: int
    value: float
    threshold: float
    op: str
    example_trace_ids: tuple[str, ...] = ()


class AlertStateReader(Protocol):
    """The read side of the alert state store (``storage.contracts.AlertStateStore`` implements it)."""

    def current(self) -> list[AlertView]:
        """Every pending or firing alert, by rule name then fingerprint."""

    def history(self, rule: str | None, since_ns: int | None, limit: int) -> list[AlertEvent]:
        """Transitions, newest first: of ``rule`` only when given, at or after ``since_ns`` when given,
        at most ``limit``."""


class NoAlertState:
    """The reader of a process with no state store: no alerts, no history."""

    def current(self) -> list[AlertView]:
        return []

    def history(self, rule: str | None, since_ns: int | None, limit: int) -> list[AlertEvent]:
        return []


class MemoryAlertState:
    """An in-memory reader for tests and the CLI's dry runs: alerts and events as put."""

    def __init__(self, alerts: Sequence[AlertView] = (), events: Sequence[AlertEvent] = ()):
        self.alerts = list(alerts)
        self.events = list(events)

    def current(self) -> list[AlertView]:
        return sorted(self.alerts, key=lambda a: (a.rule, a.fingerprint))

    def history(self, rule: str | None, since_ns: int | None, limit: int) -> list[AlertEvent]:
        chosen = [
            e for e in self.events if (rule is None or e.rule == rule) and (since_ns is None or e.at_ns >= since_ns)
        ]
        return sorted(chosen, key=lambda e: e.at_ns, reverse=True)[:limit]
