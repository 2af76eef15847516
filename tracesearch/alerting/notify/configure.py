"""The Dispatcher and its notifiers as the settings describe them (used by the composition root)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracesearch.alerting.notify.alertmanager import AlertmanagerNotifier
from tracesearch.alerting.notify.dispatcher import Dispatcher, NotifyMetrics, Policy
from tracesearch.alerting.notify.http import Notifier, trace_link_for
from tracesearch.alerting.notify.slack import SlackNotifier
from tracesearch.alerting.notify.webhook import WebhookNotifier

if TYPE_CHECKING:
    from tracesearch.settings import Settings


def notifiers_from_settings(settings: Settings) -> list[Notifier]:
    timeout = settings.alerts_notify_timeout_s
    link = trace_link_for(settings.alerts_trace_url)
    notifiers: list[Notifier] = []
    notifiers += [WebhookNotifier(url, timeout, link) for url in settings.alerts_webhook_urls]
    notifiers += [SlackNotifier(url, timeout, link) for url in settings.alerts_slack_urls]
    notifiers += [AlertmanagerNotifier(url, timeout) for url in settings.alerts_alertmanager_urls]
    return notifiers


def policy_from_settings(settings: Settings) -> Policy:
    return Policy(
        group_by=settings.alerts_group_by,
        group_wait_s=settings.alerts_group_wait_s,
        repeat_interval_s=settings.alerts_repeat_interval_s,
        resend_s=settings.alerts_alertmanager_resend_s,
        attempts=settings.alerts_notify_attempts,
    )


def dispatcher_from_settings(settings: Settings, metrics: NotifyMetrics | None = None) -> Dispatcher:
    """``metrics`` by default: the counters on /metrics."""
    if metrics is None:
        from tracesearch.prometheus import NotificationMetrics

        metrics = NotificationMetrics()
    return Dispatcher(notifiers_from_settings(settings), policy_from_settings(settings), metrics=metrics)
