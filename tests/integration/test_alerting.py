"""Alerting end to end on the real Elasticsearch and the real service under gunicorn, notifications
going to a real local HTTP receiver: a p95 rule fires once when one operation turns slow (with example
traces the Jaeger API finds, among the slow ones), not again across a restart, and resolves once when
traffic is normal again; two gunicorn masters (two hosts) send one notification per transition, and
killing the lease holder moves evaluation to the other within the lease time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service

INTERVAL_S = 2.0
LEASE_S = 3 * INTERVAL_S
WINDOW_S = 8
SLOW_S, FAST_S = 1.5, 0.02
SERVICE, SLOW_OP, FAST_OP = "shop", "GET /pay", "GET /home"


def flat(alert: dict[str, Any]) -> dict[str, Any]:
    """One alert of a webhook payload (Alertmanager's shape plus tracesearch's fields), as the tests read it."""
    return {
        "state": alert["status"],
        "rule": alert["rule"],
        "threshold": alert["threshold"],
        "op": alert["op"],
        "labels": alert["labels"],
        "value": alert["value"],
        "annotations": alert["annotations"],
        "search_url": alert["searchURL"],
        "example_trace_ids": alert["exampleTraceIDs"],
        "fingerprint": alert["fingerprint"],
        "ends_at": alert["endsAt"],
    }


class Receiver:
    """A webhook target: keeps every alert of every JSON payload POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.extend(flat(alert) for alert in json.loads(self.rfile.read(length))["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def states(self) -> list[str]:
        return [b["state"] for b in self.bodies]

    def wait_for(self, count: int, timeout_s: float) -> float:
        """Seconds until ``count`` notifications arrived; fails after ``timeout_s``."""
        start = time.monotonic()
        while len(self.bodies) < count:
            if time.monotonic() - start > timeout_s:
                pytest.fail(f"{count} notifications expected within {timeout_s:.0f}s, got {self.states()}")
            time.sleep(0.1)
        return time.monotonic() - start


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


@pytest.fixture
def prefix(es_url: str) -> Iterator[str]:
    name = f"it-alert-{uuid.uuid4().hex[:8]}"
    yield name
    drop_prefix(es_url, name)


def rules_file(tmp: Path) -> Path:
    path = tmp / "rules.yaml"
    rule = {
        "name": "pay-p95",
        "metric": "latency",
        "quantile": 0.95,
        "scope": {"service": SERVICE, "operation": SLOW_OP, "span_kind": "server"},
        "op": ">",
        "threshold": 0.5,
        "window": f"{WINDOW_S}s",
        "labels": {"team": "payments"},
        "annotations": {"summary": "p95 {{ .Value }}s over {{ .Threshold }}s"},
        "severity": "critical",
    }
    path.write_text(json.dumps({"rules": [rule]}))  # JSON is YAML too
    return path


def settings(rules: Path, receiver: Receiver) -> dict[str, str]:
    return {
        "TRACESEARCH_ALERTS_ENABLED": "true",
        "TRACESEARCH_ALERTS_INTERVAL": f"{INTERVAL_S:g}s",
        "TRACESEARCH_ALERTS_RULES_FILE": str(rules),
        "TRACESEARCH_ALERTS_WEBHOOK_URLS": receiver.url,
        "TRACESEARCH_ALERTS_GROUP_WAIT": "100ms",
        "TRACESEARCH_WORKERS": "2",
    }


class Traffic:
    """Demo-like traffic to the service: a fast and a slow-or-normal operation, a trace each request."""

    def __init__(self) -> None:
        self.slow_trace_ids: set[str] = set()

    def send(self, service: Service, slow: bool, count: int = 10) -> None:
        now = time.time_ns()
        spans = []
        for i in range(count):
            for name, duration in ((FAST_OP, FAST_S), (SLOW_OP, SLOW_S if slow else FAST_S)):
                trace_id = uuid.uuid4().hex
                if slow and name == SLOW_OP:
                    self.slow_trace_ids.add(trace_id)
                start = now - int((duration + 0.01 * i) * 1e9)
                spans.append(_span(trace_id, name, start, start + int(duration * 1e9)))
        body: dict[str, Any] = {"resourceSpans": [{"resource": _resource(), "scopeSpans": [{"spans": spans}]}]}
        answer = requests.post(f"{service.url}/v1/traces", json=body, timeout=30)
        assert answer.status_code == 200, answer.text


def _resource() -> dict[str, Any]:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": SERVICE}}]}


def _span(trace_id: str, name: str, start_ns: int, end_ns: int) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": uuid.uuid4().hex[:16],
        "name": name,
        "kind": 2,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
    }


def keep_sending(service: Service, traffic: Traffic, slow: bool, seconds: float, *, refresh: bool = True) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        traffic.send(service, slow)
        if refresh:
            service.refresh()
        time.sleep(0.5)


def test_a_p95_rule_fires_once_survives_a_restart_and_resolves_once(
    es_url: str, prefix: str, receiver: Receiver, tmp_path: Path
) -> None:
    env = settings(rules_file(tmp_path), receiver)
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
    service = start_service(es_url, prefix, tmp_path / "one", env)
    traffic = Traffic()
    try:
        keep_sending(service, traffic, slow=False, seconds=2 * INTERVAL_S)
        assert receiver.bodies == []  # normal traffic: nothing fires
        started = time.monotonic()
        keep_sending(service, traffic, slow=True, seconds=0.5)
        while not receiver.bodies and time.monotonic() - started < 2 * INTERVAL_S + 2:
            keep_sending(service, traffic, slow=True, seconds=0.5)
        fired_after = time.monotonic() - started
        assert receiver.states() == ["firing"], f"no firing within two intervals: {service.log_tail()}"
        assert fired_after <= 2 * INTERVAL_S + 2  # two intervals, plus the refresh of the spans written
        firing = receiver.bodies[0]
        assert firing["rule"] == "pay-p95" and firing["threshold"] == 0.5 and firing["op"] == ">"
        assert firing["labels"] == {"team": "payments", "alertname": "pay-p95", "severity": "critical"}
        assert firing["value"] > 0.5 and firing["annotations"]["summary"].startswith("p95 1.")
        assert "/api/search?" in firing["search_url"]
        examples = firing["example_trace_ids"]
        assert 1 <= len(examples) <= 5 and set(examples) <= traffic.slow_trace_ids
        for trace_id in examples:  # they exist: the Jaeger API gives them back, slow
            [trace] = service.get(f"/api/traces/{trace_id}").json()["data"]
            assert trace["spans"][0]["duration"] >= SLOW_S * 1e6

        # Restarted while firing: the new processes load the state, nothing is sent again.
        stop_service(service)
        service = start_service(es_url, prefix, tmp_path / "two", env)
        keep_sending(service, traffic, slow=True, seconds=3 * INTERVAL_S)
        assert receiver.states() == ["firing"]

        # Normal again: once the slow spans left the window, one resolve.
        keep_sending(service, traffic, slow=False, seconds=WINDOW_S + 2 * INTERVAL_S)
        receiver.wait_for(2, timeout_s=2 * INTERVAL_S)
        keep_sending(service, traffic, slow=False, seconds=2 * INTERVAL_S)
        assert receiver.states() == ["firing", "resolved"]
        resolved = receiver.bodies[1]
        assert resolved["fingerprint"] == firing["fingerprint"] and resolved["ends_at"] is not None
        history = requests.post(
            f"{es_url}/{prefix}-alert-events/_search", json={"sort": [{"@timestamp": "asc"}]}, timeout=30
        ).json()
        tags = [hit["_source"]["tags"] for hit in history["hits"]["hits"]]
        assert tags == [["pay-p95", state, "critical"] for state in ("firing", "resolved", "ok")]
    finally:
        stop_service(service)


def lease_holder(es_url: str, prefix: str) -> str:
    answer = requests.get(f"{es_url}/{prefix}-alerts/_doc/alerts-lease", timeout=10).json()
    return str(answer["_source"]["holder"]) if answer.get("found") else ""


def test_two_masters_send_one_notification_per_transition_and_take_over(
    es_url: str, prefix: str, receiver: Receiver, tmp_path: Path
) -> None:
    env = settings(rules_file(tmp_path), receiver)
    first = start_service(es_url, prefix, tmp_path, env)
    second = start_service(es_url, prefix, tmp_path, env)
    traffic = Traffic()
    try:
        keep_sending(first, traffic, slow=True, seconds=3 * INTERVAL_S)
        keep_sending(second, traffic, slow=True, seconds=INTERVAL_S)
        assert receiver.states() == ["firing"]
        holder = lease_holder(es_url, prefix)
        pid = int(holder.split("-")[-2])
        owner, other = (first, second) if pid in _children(first.running.pid) else (second, first)
        assert pid in _children(owner.running.pid)
        # The whole host gone: master and workers killed at once, no lease released.
        for process in (owner.running.pid, *_children(owner.running.pid)):
            os.kill(process, signal.SIGKILL)
        killed = time.monotonic()
        while lease_holder(es_url, prefix) == holder:
            assert time.monotonic() - killed < LEASE_S + INTERVAL_S + 1, "no takeover within the lease time"
            time.sleep(0.2)
        keep_sending(other, traffic, slow=False, seconds=WINDOW_S + 3 * INTERVAL_S)
        assert receiver.states() == ["firing", "resolved"]
    finally:
        for service in (first, second):
            with contextlib.suppress(Exception):  # the killed one is gone already
                stop_service(service)


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
