"""The Alertmanager notifier against a real Prometheus Alertmanager (v0.35.0, built from the Go module proxy by
``devstack/alertmanager.py``, started here on a free port with a null receiver and its storage in a tmp dir).

A firing notification appears in ``GET /api/v2/alerts`` with our labels and annotations. The resolve is the
same alert with ``endsAt`` set: Alertmanager counts it as a resolved alert received and no longer lists it
(its API drops every alert whose ``endsAt`` has passed, whatever the ``active``/``silenced``/``inhibited``/
``unprocessed`` filters say: ``alertFilter`` in api/v2/api.go), and its ``alertmanager_alerts`` gauge goes back
to no active alert.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import alertmanager
from tracesearch.alerting.notify import Dispatcher, Notification, fingerprint_of
from tracesearch.alerting.notify.alertmanager import AlertmanagerNotifier
from tracesearch.alerting.notify.dispatcher import Policy

EVERY_STATE = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
TRACES = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736")


@pytest.fixture(scope="module")
def alertmanager_binary() -> Path:
    try:
        return alertmanager.binary()
    except alertmanager.GoMissing as missing:
        pytest.skip(str(missing))


@pytest.fixture
def running(alertmanager_binary: Path, tmp_path: Path) -> Iterator[alertmanager.Alertmanager]:
    started = alertmanager.start(alertmanager_binary, tmp_path)
    yield started
    alertmanager.stop(started)


def notification(rule: str, state: str, starts_at: datetime, ends_at: datetime | None) -> Notification:
    labels = {"alertname": rule, "severity": "critical", "service": "checkout", "operation": "POST /pay"}
    return Notification(
        rule=rule,
        state=state,
        labels=labels,
        annotations={"summary": "p95 of checkout POST /pay is 0.83s"},
        value=0.8312,
        threshold=0.5,
        op=">",
        window_s=300.0,
        starts_at=starts_at,
        ends_at=ends_at,
        search_url="http://tracesearch.test:4318/api/search?q=%7B%20resource.service.name%20%3D%20%22checkout%22%20%7D",
        example_trace_ids=TRACES,
        fingerprint=fingerprint_of(rule, labels),
    )


def listed(url: str, rule: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{url}/api/v2/alerts", params={**EVERY_STATE, "filter": f'alertname="{rule}"'}, timeout=5)
    answer.raise_for_status()
    alerts: list[dict[str, Any]] = answer.json()
    return alerts


def metric(url: str, name: str, **labels: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_firing_appears_with_our_labels_and_the_resolve_resolves_it(running: alertmanager.Alertmanager) -> None:
    rule = f"checkout-p95-{uuid.uuid4().hex[:8]}"
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    dispatcher = Dispatcher([AlertmanagerNotifier(running.url, 5.0)], Policy(group_wait_s=0.0))
    firing = notification(rule, "firing", starts, None)

    dispatcher.submit(firing)
    assert dispatcher.flush(10)
    [shown] = listed(running.url, rule)
    assert shown["labels"] == dict(firing.labels)
    assert shown["annotations"] == {
        "summary": "p95 of checkout POST /pay is 0.83s",
        "value": "0.8312",
        "threshold": "0.5",
        "op": ">",
        "window": "5m",
        "search_url": firing.search_url,
        "example_trace_ids": ",".join(TRACES),
    }
    assert shown["generatorURL"] == firing.search_url
    assert datetime.fromisoformat(shown["startsAt"]) == starts
    # No endsAt sent: Alertmanager keeps it for its resolve_timeout unless re-sent (the Dispatcher re-sends).
    assert datetime.fromisoformat(shown["endsAt"]) > datetime.now(UTC)
    assert shown["status"]["state"] in ("active", "unprocessed")
    assert shown["receivers"] == [{"name": "null"}]
    assert metric(running.url, "alertmanager_alerts_received_total", status="firing") == 1

    resolved = notification(rule, "resolved", starts, datetime.now(UTC))
    dispatcher.submit(resolved)
    assert dispatcher.flush(10)
    dispatcher.close()
    assert listed(running.url, rule) == []
    assert metric(running.url, "alertmanager_alerts_received_total", status="resolved") == 1
    assert metric(running.url, "alertmanager_alerts", state="active") == 0


def test_refused_alert_is_not_retried(running: alertmanager.Alertmanager) -> None:
    """Alertmanager answers 400 to an alert it cannot take (here: no labels at all): one call, no retry."""
    calls = []

    class Counting(AlertmanagerNotifier):
        def post(self, body: Any) -> None:
            calls.append(body)
            super().post(body)

    now = datetime.now(UTC)
    bad = Notification("x", "firing", {}, {}, 1.0, 0.5, ">", 60.0, now, None, "http://t.test/", (), "f")
    dispatcher = Dispatcher([Counting(running.url, 5.0)], Policy(group_wait_s=0.0), sleep=lambda _: None)
    dispatcher.submit(bad)
    assert dispatcher.flush(10)
    dispatcher.close()
    assert len(calls) == 1
    assert metric(running.url, "alertmanager_alerts_invalid_total") == 1
