"""The generic webhook: one JSON document per group, shaped like Alertmanager's webhook payload (so receivers
written for it read ours) with the fields only tracesearch knows added to each alert. Schema: README,
"Notifications"."""

from __future__ import annotations

from typing import Any

import requests

from tracesearch.alerting.notify.http import HttpNotifier, TraceLink, finite, trace_link_for
from tracesearch.alerting.notify.model import Group, Notification, duration_text, rfc3339

VERSION = "1"
RECEIVER = "tracesearch"


def common(mappings: list[dict[str, str]]) -> dict[str, str]:
    """The pairs every alert of the group shares (Alertmanager's commonLabels/commonAnnotations)."""
    if not mappings:
        return {}
    first, *rest = mappings
    return {name: value for name, value in first.items() if all(other.get(name) == value for other in rest)}


def alert_json(n: Notification, trace_link: TraceLink) -> dict[str, Any]:
    return {
        "status": n.state,
        "labels": dict(n.labels),
        "annotations": dict(n.annotations),
        "startsAt": rfc3339(n.starts_at),
        "endsAt": rfc3339(n.ends_at) if n.ends_at else None,
        "generatorURL": n.search_url,
        "fingerprint": n.fingerprint,
        "rule": n.rule,
        "value": finite(n.value),
        "threshold": finite(n.threshold),
        "op": n.op,
        "window": duration_text(n.window_s),
        "windowSeconds": n.window_s,
        "searchURL": n.search_url,
        "exampleTraceIDs": list(n.example_trace_ids),
        "exampleTraceURLs": [trace_link(n.search_url, trace_id) for trace_id in n.example_trace_ids],
    }


def webhook_payload(group: Group, trace_link: TraceLink) -> dict[str, Any]:
    alerts = [alert_json(n, trace_link) for n in group.alerts]
    return {
        "version": VERSION,
        "receiver": RECEIVER,
        "groupKey": group.key,
        "status": group.status,
        "groupLabels": dict(group.labels),
        "commonLabels": common([a["labels"] for a in alerts]),
        "commonAnnotations": common([a["annotations"] for a in alerts]),
        "truncatedAlerts": 0,
        "alerts": alerts,
    }


class WebhookNotifier(HttpNotifier):
    kind = "webhook"

    def __init__(
        self, url: str, timeout_s: float, trace_link: TraceLink | None = None, session: requests.Session | None = None
    ) -> None:
        super().__init__(url, timeout_s, session)
        self._trace_link = trace_link or trace_link_for("")

    def payload(self, group: Group) -> dict[str, Any]:
        return webhook_payload(group, self._trace_link)
