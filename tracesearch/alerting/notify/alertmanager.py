"""Prometheus Alertmanager: ``POST {url}/api/v2/alerts`` with a list of postable alerts, so teams keep their
routing, silences, inhibitions and on-call receivers.

Alertmanager resolves a firing alert that nobody re-sent within its ``resolve_timeout`` (5m by default)
when the alert carries no ``endsAt``, and de-duplicates re-sends itself; so this notifier ``resends``:
the Dispatcher gives it still-firing alerts every ``resend_s`` (1m, as Prometheus does), not every repeat
interval. A resolve is the same alert with ``endsAt`` set.
"""

from __future__ import annotations

from typing import Any

from tracesearch.alerting.notify.http import HttpNotifier
from tracesearch.alerting.notify.model import Group, Notification, duration_text, number_text, rfc3339

PATH = "/api/v2/alerts"


def postable_alert(n: Notification) -> dict[str, Any]:
    annotations = {
        **n.annotations,
        "value": number_text(n.value),
        "threshold": number_text(n.threshold),
        "op": n.op,
        "window": duration_text(n.window_s),
        "search_url": n.search_url,
        "example_trace_ids": ",".join(n.example_trace_ids),
    }
    alert: dict[str, Any] = {
        # Alertmanager, like Prometheus, reads an empty label value as no label.
        "labels": {name: value for name, value in n.labels.items() if value},
        "annotations": annotations,
        "startsAt": rfc3339(n.starts_at),
        "generatorURL": n.search_url,
    }
    if n.ends_at is not None:
        alert["endsAt"] = rfc3339(n.ends_at)
    return alert


def alertmanager_payload(group: Group) -> list[dict[str, Any]]:
    return [postable_alert(n) for n in group.alerts]


class AlertmanagerNotifier(HttpNotifier):
    kind = "alertmanager"
    resends = True

    def endpoint(self) -> str:
        return self._url.rstrip("/") + PATH

    def payload(self, group: Group) -> list[dict[str, Any]]:
        return alertmanager_payload(group)
