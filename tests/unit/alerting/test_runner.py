"""The runner over the in-memory stores: one notification per transition, none again after a restart,
and a holder whose lease was taken over writes nothing and notifies no one (fencing)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from tests.unit.alerting.shop import NOW_NS, S, rule, span, store_with
from tracesearch.alerting.evaluate import Evaluator
from tracesearch.alerting.notify.model import Notification
from tracesearch.alerting.rules import Rule
from tracesearch.alerting.runner import AlertRunner, RunnerConfig
from tracesearch.services.query import QueryService
from tracesearch.storage.contracts import AlertWrite
from tracesearch.storage.memory import MemoryAlerts, MemoryStore

INTERVAL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW_NS / S

    def __call__(self) -> float:
        return self.now


class Captured:
    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.reminded: list[Notification] = []

    def submit(self, notification: Notification) -> None:
        self.sent.append(notification)

    def remind(self, notification: Notification) -> None:
        self.reminded.append(notification)

    def close(self, timeout_s: float = 5.0) -> None:
        pass


def runner(
    spans: MemoryStore, alerts: MemoryAlerts, rules: Sequence[Rule], clock: Clock, name: str, **config: str
) -> tuple[AlertRunner, Captured]:
    query = QueryService(spans, spans.aggregates)
    sent = Captured()
    settings = RunnerConfig(interval_s=INTERVAL, **config)
    made = AlertRunner(alerts, query, Evaluator(query, spans.aggregates), lambda: rules, sent, settings, name, clock)
    return made, sent


def slow_shop() -> MemoryStore:
    start = NOW_NS - 100 * S
    return store_with([span("checkout", "POST /pay", 3000, start + i * S) for i in range(20)])


def test_a_firing_alert_is_notified_once_and_not_again_after_a_restart() -> None:
    clock, alerts, spans = Clock(), MemoryAlerts(Clock()), slow_shop()
    rules = [rule(for_s=10, annotations={"summary": "p95 {{ .Value }}s over {{ .Threshold }}s"})]
    first, sent = runner(spans, alerts, rules, clock, "p1")
    assert first.tick()
    assert sent.sent == []  # pending
    clock.now += INTERVAL
    first.tick()
    [firing] = sent.sent
    assert (firing.state, firing.rule, firing.threshold, firing.op) == ("firing", "pay-p95", 1.0, ">")
    assert firing.labels == {"alertname": "pay-p95", "severity": "warning"}
    assert 2.8 < firing.value < 3.2 and firing.annotations["summary"].startswith("p95 3")
    assert len(firing.example_trace_ids) == 5
    assert all(spans.get_trace(t) for t in firing.example_trace_ids)
    link = urlsplit(firing.search_url)
    assert link.path == "/api/search" and parse_qs(link.query)["q"] == [
        '{ name = "POST /pay" && resource.service.name = "checkout" && kind = server && duration > 1000ms }'.replace(
            'name = "POST /pay" && resource.service.name = "checkout"',
            'resource.service.name = "checkout" && name = "POST /pay"',
        )
    ]
    first.stop()
    restarted, again = runner(spans, alerts, rules, clock, "p2")
    clock.now += INTERVAL
    assert restarted.tick()
    assert again.sent == []  # still firing: nothing new to say
    assert [(e.previous, e.state) for e in reversed(alerts.history(None, None, 10))] == [
        ("ok", "pending"),
        ("pending", "firing"),
    ]
    [current] = alerts.current()
    assert current.state == "firing" and current.example_trace_ids == firing.example_trace_ids


def test_resolve_is_notified_once_with_its_end() -> None:
    clock, alerts, spans = Clock(), MemoryAlerts(Clock()), slow_shop()
    r, sent = runner(spans, alerts, [rule(window_s=60.0)], clock, "p1")
    r.tick()
    clock.now += 200  # the slow minute left the window
    r.tick()
    r.tick()
    assert [n.state for n in sent.sent] == ["firing", "resolved"]
    resolved = sent.sent[1]
    assert resolved.ends_at is not None and resolved.starts_at == sent.sent[0].starts_at


def test_only_the_lease_holder_evaluates_and_a_stale_holder_is_fenced() -> None:
    clock, spans = Clock(), slow_shop()
    alerts = MemoryAlerts(clock)
    a, sent_a = runner(spans, alerts, [rule()], clock, "a")
    b, sent_b = runner(spans, alerts, [rule()], clock, "b")
    assert a.tick() and not b.tick()
    assert len(sent_a.sent) == 1
    clock.now += 3 * INTERVAL + 1  # a pauses past its lease; b takes over with a newer token
    assert b.tick()
    assert sent_b.sent == []  # b loaded a's firing alert: no second notification
    stored = alerts.get_alert(next(iter(alerts.load_alerts())))
    assert stored is not None
    old_token = stored.token - 1
    assert alerts.write_alert(stored.alert, old_token, stored.version)[0] == AlertWrite.FENCED


def test_grafana_links_open_explore_on_the_tempo_data_source() -> None:
    clock, alerts, spans = Clock(), MemoryAlerts(Clock()), slow_shop()
    r, sent = runner(spans, alerts, [rule()], clock, "p1", grafana_url="https://grafana.example/")
    r.tick()
    link = urlsplit(sent.sent[0].search_url)
    assert (link.netloc, link.path) == ("grafana.example", "/explore")
    import json

    [pane] = json.loads(parse_qs(link.query)["panes"][0]).values()
    assert pane["datasource"] == "tracesearch-tempo"
    assert pane["queries"][0]["queryType"] == "traceql" and "duration > 1000ms" in pane["queries"][0]["query"]
    assert int(pane["range"]["to"]) - int(pane["range"]["from"]) == 300_000


def test_a_tenants_notifications_name_the_tenant() -> None:
    clock, alerts, spans = Clock(), MemoryAlerts(Clock()), slow_shop()
    made, sent = runner(spans, alerts, [rule(for_s=0)], clock, "p1", tenant="team-a")
    made.tick()
    [firing] = sent.sent
    assert firing.labels == {"alertname": "pay-p95", "severity": "warning", "tenant": "team-a"}
    # The stored alert keeps its own labels: its fingerprint is the same whoever evaluates it.
    assert "tenant" not in alerts.current()[0].labels
