"""What the evaluator hands over on every transition to firing or resolved, and small helpers shared by the
notifiers (times and durations as the payloads write them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True)
class Notification:
    rule: str
    state: str  # "firing" | "resolved"
    labels: Mapping[str, str]  # rule labels + group_by label values + alertname=rule + severity
    annotations: Mapping[str, str]  # rendered
    value: float
    threshold: float
    op: str
    window_s: float
    starts_at: datetime  # when it started firing (UTC)
    ends_at: datetime | None  # set when resolved
    search_url: str  # Grafana Explore (Tempo) when a Grafana URL is configured, else native API URL
    example_trace_ids: tuple[str, ...]  # up to 5, existing
    fingerprint: str  # stable id of (rule, labels): de-duplication and grouping key


def fingerprint_of(rule: str, labels: Mapping[str, str]) -> str:
    """A stable id of (rule, labels): the same in every process and release (no ``hash()``, which is salted).

    16 hex digits, as long as Alertmanager's own fingerprints; label order does not matter.
    """
    canonical = json.dumps([rule, sorted(labels.items())], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def rfc3339(moment: datetime) -> str:
    """UTC with a ``Z`` and milliseconds, as Alertmanager writes times (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration_text(seconds: float) -> str:
    """``300`` → ``5m``, ``5400`` → ``1h30m``, ``0.5`` → ``500ms``: the spelling of the settings."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    remaining = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def number_text(value: float) -> str:
    """A value as people read it in a message: 4 significant digits, no exponent for usual magnitudes."""
    return f"{value:.4g}"


@dataclass(frozen=True)
class Group:
    """The alerts of one group (same values of the group-by labels) sent in one call."""

    key: str  # Alertmanager's spelling: {}:{alertname="checkout-p95"}
    labels: Mapping[str, str]  # the group-by labels and their values
    alerts: tuple[Notification, ...]

    @property
    def status(self) -> str:
        """firing while any alert of the group fires, as Alertmanager's webhook says."""
        return FIRING if any(alert.state == FIRING for alert in self.alerts) else RESOLVED


def group_labels(labels: Mapping[str, str], group_by: tuple[str, ...]) -> dict[str, str]:
    """The group-by labels an alert has (one it lacks is left out, as in Alertmanager)."""
    return {name: labels[name] for name in group_by if name in labels}


def group_key(grouped: Mapping[str, str]) -> str:
    inner = ",".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in sorted(grouped.items()))
    return "{}:{" + inner + "}"
