"""Notifications of alert transitions: the ``Notification`` the evaluator hands over, the ``Dispatcher`` that
groups, de-duplicates, repeats and retries them, and the notifiers (generic webhook, Slack, Alertmanager)."""

from tracesearch.alerting.notify.dispatcher import Dispatcher
from tracesearch.alerting.notify.model import Notification, fingerprint_of

__all__ = ["Dispatcher", "Notification", "fingerprint_of"]
