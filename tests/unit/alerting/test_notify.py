"""The notifiers' payloads field by field, and the Dispatcher's retries, de-duplication, repeat interval,
grouping and safety, against receivers faked with ``responses`` (outgoing HTTP to third parties)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
import responses

from tracesearch.alerting.notify import Dispatcher, Notification, fingerprint_of
from tracesearch.alerting.notify.alertmanager import AlertmanagerNotifier
from tracesearch.alerting.notify.dispatcher import Policy
from tracesearch.alerting.notify.http import Notifier, redact, trace_link_for
from tracesearch.alerting.notify.model import Group
from tracesearch.alerting.notify.slack import SlackNotifier
from tracesearch.alerting.notify.webhook import WebhookNotifier
from tracesearch.settings import Settings

HOOK = "http://receiver.test/hook"
SLACK = "https://hooks.slack.test/services/T000/B000/sEcReTtOkEn"
AM = "http://alertmanager.test:9093"
SEARCH = "http://tracesearch.test:4318/api/search?q=%7B%7D&start=1&end=2"
STARTS = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ENDS = datetime(2025, 3, 1, 12, 7, 30, tzinfo=UTC)
TRACES = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736")


def alert(rule: str = "checkout-p95", state: str = "firing", **labels: str) -> Notification:
    all_labels = {"alertname": rule, "severity": "warning", "service": "checkout", **labels}
    return Notification(
        rule=rule,
        state=state,
        labels=all_labels,
        annotations={"summary": "checkout is slow"},
        value=0.8312,
        threshold=0.5,
        op=">",
        window_s=300.0,
        starts_at=STARTS,
        ends_at=ENDS if state == "resolved" else None,
        search_url=SEARCH,
        example_trace_ids=TRACES,
        fingerprint=fingerprint_of(rule, all_labels),
    )


class Recorder:
    """The Dispatcher's counters, kept to assert on."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def sent(self, notifier: str, alerts: int) -> None:
        self.counts["sent", notifier] += 1

    def failed(self, notifier: str, alerts: int) -> None:
        self.counts["failed", notifier] += 1

    def retried(self, notifier: str) -> None:
        self.counts["retried", notifier] += 1

    def dropped(self, reason: str) -> None:
        self.counts["dropped", reason] += 1


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def dispatcher(
    notifiers: list[Notifier], *, clock: FakeClock | None = None, group_wait_s: float = 0.0, **policy: Any
) -> tuple[Dispatcher, Recorder, list[float]]:
    recorder, sleeps = Recorder(), list[float]()
    made = Dispatcher(
        notifiers,
        Policy(group_wait_s=group_wait_s, **policy),
        metrics=recorder,
        clock=clock or FakeClock(STARTS),
        sleep=sleeps.append,
        jitter=lambda: 0.5,  # factor 1.0: delays exactly 1s, 2s, 4s, ...
    )
    return made, recorder, sleeps


def bodies(rsps: responses.RequestsMock) -> list[Any]:
    return [
        json.loads(str(call.request.body, "utf-8") if isinstance(call.request.body, bytes) else str(call.request.body))
        for call in rsps.calls
    ]


# Payloads, field by field.


def test_webhook_payload_firing() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        made, recorder, _ = dispatcher([WebhookNotifier(HOOK, 5.0)])
        made.submit(alert())
        assert made.flush()
        [body] = bodies(rsps)
        assert rsps.calls[0].request.headers["Content-Type"] == "application/json"
    assert body["version"] == "1"
    assert body["receiver"] == "tracesearch"
    assert body["groupKey"] == '{}:{alertname="checkout-p95"}'
    assert body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "checkout-p95"}
    assert body["commonLabels"] == {"alertname": "checkout-p95", "severity": "warning", "service": "checkout"}
    assert body["commonAnnotations"] == {"summary": "checkout is slow"}
    assert body["truncatedAlerts"] == 0
    [one] = body["alerts"]
    assert one["status"] == "firing"
    assert one["labels"] == {"alertname": "checkout-p95", "severity": "warning", "service": "checkout"}
    assert one["annotations"] == {"summary": "checkout is slow"}
    assert one["startsAt"] == "2025-03-01T12:00:00.000Z"
    assert one["endsAt"] is None
    assert one["generatorURL"] == SEARCH
    assert one["fingerprint"] == fingerprint_of("checkout-p95", one["labels"])
    assert one["rule"] == "checkout-p95"
    assert one["value"] == 0.8312
    assert one["threshold"] == 0.5
    assert one["op"] == ">"
    assert one["window"] == "5m"
    assert one["windowSeconds"] == 300.0
    assert one["searchURL"] == SEARCH
    assert one["exampleTraceIDs"] == list(TRACES)
    assert one["exampleTraceURLs"] == [f"http://tracesearch.test:4318/api/traces/{t}" for t in TRACES]
    assert set(one) == {
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint", "rule", "value",
        "threshold", "op", "window", "windowSeconds", "searchURL", "exampleTraceIDs", "exampleTraceURLs",
    }  # fmt: skip
    assert recorder.counts == {("sent", "webhook"): 1}


def test_webhook_payload_resolved_and_not_a_number() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=204)
        made, _, _ = dispatcher([WebhookNotifier(HOOK, 5.0)])
        made.submit(replace(alert(state="resolved"), value=float("nan")))
        assert made.flush()
        [body] = bodies(rsps)
    assert body["status"] == "resolved"
    assert body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] == "2025-03-01T12:07:30.000Z"
    assert body["alerts"][0]["value"] is None  # JSON has no NaN


def test_slack_payload() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SLACK, status=200, body="ok")
        made, _, _ = dispatcher([SlackNotifier(SLACK, 5.0)])
        made.submit(alert(operation="GET /pay<x>"))
        assert made.flush()
        [body] = bodies(rsps)
    assert body["text"] == "checkout-p95 firing: 0.8312 > 0.5 over 5m"
    header, section, links = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "[FIRING:1] alertname=checkout-p95"}}
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    lines = section["text"]["text"].split("\n")
    assert lines[0] == ":rotating_light: *checkout-p95* firing"
    assert lines[1] == "Value *0.8312* &gt; threshold *0.5* over 5m"
    assert lines[2] == ("`alertname=checkout-p95` `operation=GET /pay&lt;x&gt;` `service=checkout` `severity=warning`")
    assert lines[3] == "checkout is slow"
    assert links["type"] == "context"
    [element] = links["elements"]
    assert element["type"] == "mrkdwn"
    trace_links = ", ".join(f"<http://tracesearch.test:4318/api/traces/{t}|{t[:16]}>" for t in TRACES)
    assert element["text"] == f"<{SEARCH}|Search the traces> · Example traces: {trace_links}"


def test_slack_groups_many_alerts_into_one_message_with_a_cap() -> None:
    group = Group('{}:{alertname="x"}', {"alertname": "x"}, tuple(alert("x", pod=str(i)) for i in range(12)))
    body = SlackNotifier(SLACK, 5.0).payload(group)
    assert body["text"] == "[FIRING:12] alertname=x"
    assert len(body["blocks"]) == 1 + 2 * 10 + 1
    assert body["blocks"][-1]["elements"][0]["text"] == "and 2 more alert(s) of this group"


def test_alertmanager_payload_firing_then_resolved() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{AM}/api/v2/alerts", status=200)
        made, _, _ = dispatcher([AlertmanagerNotifier(AM + "/", 5.0)])
        made.submit(alert(empty=""))
        assert made.flush()
        made.submit(alert(state="resolved", empty=""))
        assert made.flush()
        firing, resolved = bodies(rsps)
    assert isinstance(firing, list)
    [posted] = firing
    assert posted["labels"] == {"alertname": "checkout-p95", "severity": "warning", "service": "checkout"}
    assert posted["annotations"] == {
        "summary": "checkout is slow",
        "value": "0.8312",
        "threshold": "0.5",
        "op": ">",
        "window": "5m",
        "search_url": SEARCH,
        "example_trace_ids": ",".join(TRACES),
    }
    assert posted["startsAt"] == "2025-03-01T12:00:00.000Z"
    assert "endsAt" not in posted  # firing: Alertmanager keeps it until resolve_timeout without a re-send
    assert posted["generatorURL"] == SEARCH
    [closed] = resolved
    assert closed["endsAt"] == "2025-03-01T12:07:30.000Z"
    assert closed["labels"] == posted["labels"]


# Retries.


def test_retries_on_500_with_exponential_backoff() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=500, body="busy")
        rsps.add(responses.POST, HOOK, status=502)
        rsps.add(responses.POST, HOOK, status=200)
        made, recorder, sleeps = dispatcher([WebhookNotifier(HOOK, 5.0)])
        made.submit(alert())
        assert made.flush()
        assert len(rsps.calls) == 3
        assert bodies(rsps)[0] == bodies(rsps)[2]  # the same call, again
    assert sleeps == [1.0, 2.0]
    assert recorder.counts == {("retried", "webhook"): 2, ("sent", "webhook"): 1}


@pytest.mark.parametrize("timeout", [requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout])
def test_retries_on_timeouts(timeout: type[Exception]) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, body=timeout("slow"))
        rsps.add(responses.POST, HOOK, status=200)
        made, recorder, sleeps = dispatcher([WebhookNotifier(HOOK, 5.0)])
        made.submit(alert())
        assert made.flush()
        assert len(rsps.calls) == 2
    assert sleeps == [1.0]
    assert recorder.counts == {("retried", "webhook"): 1, ("sent", "webhook"): 1}


def test_connection_errors_retried_within_the_bounded_attempts_then_given_up(caplog: pytest.LogCaptureFixture) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SLACK, body=requests.exceptions.ConnectionError(f"cannot reach {SLACK}"))
        made, recorder, sleeps = dispatcher([SlackNotifier(SLACK, 5.0)], attempts=4, max_backoff_s=3.0)
        with caplog.at_level(logging.INFO):
            made.submit(alert())
            assert made.flush()
        assert len(rsps.calls) == 4
    assert sleeps == [1.0, 2.0, 3.0]  # doubling, capped
    assert recorder.counts == {("retried", "slack"): 3, ("failed", "slack"): 1}
    assert "not delivered after 4 attempt(s): ConnectionError" in caplog.text
    assert "sEcReT" not in caplog.text and "/services/" not in caplog.text  # the URL is the secret
    assert "https://hooks.slack.test/…" in caplog.text


def test_no_retry_on_400_and_the_answer_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=400, body='{"error": "missing field text"}')
        made, recorder, sleeps = dispatcher([WebhookNotifier(HOOK, 5.0)])
        with caplog.at_level(logging.INFO):
            made.submit(alert())
            assert made.flush()
        assert len(rsps.calls) == 1
    assert sleeps == []
    assert recorder.counts == {("failed", "webhook"): 1}
    assert 'HTTP 400: {"error": "missing field text"}' in caplog.text


def test_a_failed_alert_is_due_again_at_the_next_reminder() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=400)
        rsps.add(responses.POST, HOOK, status=200)
        made, recorder, _ = dispatcher([WebhookNotifier(HOOK, 5.0)])
        made.submit(alert())
        assert made.flush()
        made.remind(alert())
        assert made.flush()
        assert len(rsps.calls) == 2
    assert recorder.counts == {("failed", "webhook"): 1, ("sent", "webhook"): 1}


# De-duplication and the repeat interval.


def test_a_transition_submitted_twice_is_sent_once() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        made, _, _ = dispatcher([WebhookNotifier(HOOK, 5.0)])
        for _ in range(3):
            made.submit(alert())
            assert made.flush()
        for _ in range(2):
            made.submit(alert(state="resolved"))
            assert made.flush()
        made.submit(replace(alert(), starts_at=ENDS))  # fires again later: a new transition
        assert made.flush()
        statuses = [(b["status"], b["alerts"][0]["startsAt"]) for b in bodies(rsps)]
    assert statuses == [
        ("firing", "2025-03-01T12:00:00.000Z"),
        ("resolved", "2025-03-01T12:00:00.000Z"),
        ("firing", "2025-03-01T12:07:30.000Z"),
    ]


def test_repeat_interval_with_a_fake_clock() -> None:
    clock = FakeClock(STARTS)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        rsps.add(responses.POST, f"{AM}/api/v2/alerts", status=200)
        made, _, _ = dispatcher([WebhookNotifier(HOOK, 5.0), AlertmanagerNotifier(AM, 5.0)], clock=clock)

        def cycle(minutes: float, transition: bool = False) -> tuple[int, int]:
            clock.now = STARTS.timestamp() + minutes * 60
            (made.submit if transition else made.remind)(alert())
            assert made.flush()
            hook = sum(1 for call in rsps.calls if call.request.url == HOOK)
            return hook, len(rsps.calls) - hook

        assert cycle(0, transition=True) == (1, 1)
        assert cycle(0.5) == (1, 1)  # within Alertmanager's re-send minute too
        assert cycle(1) == (1, 2)  # Alertmanager: re-sent every minute, or it resolves the alert itself
        assert cycle(239) == (1, 3)
        assert cycle(240) == (2, 4)  # webhook: again after the 4h repeat interval
        assert cycle(300) == (2, 5)
        assert cycle(480) == (3, 6)


def test_a_reminder_after_a_restart_is_not_a_new_notification() -> None:
    """A process that never saw the transition (restarted, or took the lease over) gets reminders only:
    webhook and Slack are not notified again, and the repeat schedule is kept from starts_at."""
    clock = FakeClock(STARTS)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        rsps.add(responses.POST, f"{AM}/api/v2/alerts", status=200)
        made, _, _ = dispatcher([WebhookNotifier(HOOK, 5.0), AlertmanagerNotifier(AM, 5.0)], clock=clock)
        clock.now = STARTS.timestamp() + 3600 * 5  # restarted 5h after it started firing
        made.remind(alert())
        assert made.flush()
        assert [call.request.url for call in rsps.calls] == [f"{AM}/api/v2/alerts"]
        clock.now = STARTS.timestamp() + 3600 * 8  # the next 4h boundary from starts_at
        made.remind(alert())
        assert made.flush()
        assert [call.request.url for call in rsps.calls].count(HOOK) == 1
        made.submit(alert(state="resolved"))
        assert made.flush()
        assert bodies(rsps)[-1][0]["endsAt"] == "2025-03-01T12:07:30.000Z"


# Grouping.


def test_grouping_by_labels_one_call_per_group() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        made, _, _ = dispatcher([WebhookNotifier(HOOK, 5.0)], group_wait_s=60.0, group_by=("alertname",))
        made.submit(alert("checkout-p95", service="checkout"))
        made.submit(alert("checkout-p95", service="payments"))
        made.submit(alert("errors", service="checkout"))
        made.submit(alert("checkout-p95", state="resolved", service="inventory"))
        assert made.flush()  # what waits for its group goes now
        groups = {b["groupKey"]: b for b in bodies(rsps)}
    assert set(groups) == {'{}:{alertname="checkout-p95"}', '{}:{alertname="errors"}'}
    p95 = groups['{}:{alertname="checkout-p95"}']
    assert [(a["labels"]["service"], a["status"]) for a in p95["alerts"]] == [
        ("checkout", "firing"),
        ("payments", "firing"),
        ("inventory", "resolved"),
    ]
    assert p95["status"] == "firing"
    assert p95["commonLabels"] == {"alertname": "checkout-p95", "severity": "warning"}


def test_group_wait_collects_what_comes_within_it() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        made, _, _ = dispatcher([WebhookNotifier(HOOK, 5.0)], group_wait_s=0.3, group_by=("service",))
        started = time.monotonic()
        made.submit(alert("a"))
        time.sleep(0.1)
        assert len(rsps.calls) == 0  # still waiting for the others of its group
        made.submit(alert("b"))
        deadline = time.monotonic() + 5
        while not rsps.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        waited = time.monotonic() - started
        time.sleep(0.1)
        [body] = bodies(rsps)
        made.close()
    assert body["groupKey"] == '{}:{service="checkout"}'
    assert [a["rule"] for a in body["alerts"]] == ["a", "b"]
    assert 0.3 <= waited < 3.0  # generous: a loaded machine (make test) is slow to wake the thread


# Safety of the evaluator's side.


class Exploding:
    kind = "webhook"
    target = "broken"

    def send(self, group: Group) -> None:
        raise RuntimeError("bug in a notifier")


def test_submit_never_raises_and_one_broken_notifier_does_not_stop_the_others() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        made, recorder, _ = dispatcher([Exploding(), WebhookNotifier(HOOK, 5.0)])
        made.submit(alert())
        made.submit(object())  # type: ignore[arg-type]  # not even a Notification
        assert made.flush()
        assert len(rsps.calls) == 1
        made.close()
        made.submit(alert("after-close"))  # neither raises nor sends
    assert recorder.counts == {("failed", "webhook"): 1, ("sent", "webhook"): 1, ("dropped", "closed"): 1}


def test_submit_does_not_block_while_a_receiver_hangs() -> None:
    release = threading.Event()

    class Hanging:
        kind = "webhook"
        target = "hanging"

        def send(self, group: Group) -> None:
            release.wait(10)

    made, recorder, _ = dispatcher([Hanging()], queue_size=2)
    started = time.monotonic()
    for index in range(50):
        made.submit(alert(f"rule-{index}"))
    assert time.monotonic() - started < 0.5
    assert recorder.counts["dropped", "queue_full"] >= 45  # bounded memory: the rest is counted, not kept
    release.set()
    made.close(timeout_s=5)


def test_close_delivers_what_waits_for_its_group() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK, status=200)
        made, _, _ = dispatcher([WebhookNotifier(HOOK, 5.0)], group_wait_s=3600.0)
        made.submit(alert())
        made.close(timeout_s=5)
        assert len(rsps.calls) == 1


# Configuration and helpers.


def test_from_settings_builds_one_notifier_per_url() -> None:
    settings = Settings.from_env(
        {
            "TRACESEARCH_ALERTS_WEBHOOK_URLS": "http://a.test/hook, http://b.test/hook",
            "TRACESEARCH_ALERTS_SLACK_URLS": SLACK,
            "TRACESEARCH_ALERTS_ALERTMANAGER_URLS": AM,
            "TRACESEARCH_ALERTS_GROUP_BY": "alertname,service",
        }
    )
    made = Dispatcher.from_settings(settings)
    assert [(n.kind, n.target) for n in made.notifiers] == [
        ("webhook", "http://a.test/…"),
        ("webhook", "http://b.test/…"),
        ("slack", "https://hooks.slack.test/…"),
        ("alertmanager", "http://alertmanager.test:9093"),
    ]
    made.close()


def test_a_bad_url_setting_is_refused_without_showing_it() -> None:
    from tracesearch.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"TRACESEARCH_ALERTS_SLACK_URLS": "hooks.slack.com/services/T/B/secret"})
    assert "URL number 1" in str(refused.value) and "secret" not in str(refused.value)


def test_fingerprint_is_stable_and_ignores_label_order() -> None:
    first = fingerprint_of("r", {"a": "1", "b": "2"})
    assert first == fingerprint_of("r", {"b": "2", "a": "1"})
    assert first == "5316bc870143d445"  # the same in every process and release: Python's hash() would not be
    assert first != fingerprint_of("r", {"a": "1", "b": "3"})
    assert first != fingerprint_of("s", {"a": "1", "b": "2"})


def test_redact_keeps_scheme_host_and_port_only() -> None:
    assert redact("https://user:pw@hooks.slack.com/services/T/B/x?token=y") == "https://hooks.slack.com/…"
    assert redact("http://am:9093") == "http://am:9093"


def test_trace_links() -> None:
    native = trace_link_for("")
    assert native("http://ts.test/base/api/search?q=1", "abc") == "http://ts.test/base/api/traces/abc"
    explore = "http://grafana.test/explore?orgId=1&left=" + quote(
        '{"datasource":"tempo","queries":[{"refId":"A","query":"{ }","queryType":"traceql"}]}'
    )
    linked = native(explore, "abc")
    left = json.loads(unquote(linked.split("left=", 1)[1]).replace("+", " "))
    assert linked.startswith("http://grafana.test/explore?orgId=1&left=")
    assert left == {"datasource": "tempo", "queries": [{"refId": "A", "query": "abc", "queryType": "traceql"}]}
    assert trace_link_for("http://jaeger.test/trace/{trace_id}")(explore, "abc") == "http://jaeger.test/trace/abc"
