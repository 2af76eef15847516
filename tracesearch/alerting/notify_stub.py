"""STUB until helper C's ``alerting/notify/`` is merged: the spec's ``Notification`` and a ``Dispatcher``
with its two methods, which POSTs each notification as JSON to the webhook URLs (one try, no retries,
no grouping) on a worker thread, so the integration tests count notifications end to end. At merge the
runner's import switches to ``alerting.notify.model.Notification`` and components builds C's Dispatcher."""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notification:
    rule: str
    state: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float
    threshold: float
    op: str
    window_s: float
    starts_at: datetime
    ends_at: datetime | None
    search_url: str
    example_trace_ids: tuple[str, ...]
    fingerprint: str


def as_json(notification: Notification) -> dict[str, Any]:
    body = asdict(notification)
    body["starts_at"] = notification.starts_at.isoformat()
    body["ends_at"] = notification.ends_at.isoformat() if notification.ends_at else None
    body["labels"], body["annotations"] = dict(notification.labels), dict(notification.annotations)
    body["example_trace_ids"] = list(notification.example_trace_ids)
    return body


class StubDispatcher:
    def __init__(self, urls: Sequence[str]):
        self._urls = tuple(urls)
        self._queue: queue.Queue[Notification | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="alerts-dispatch-stub", daemon=True)
        self._thread.start()

    def submit(self, notification: Notification) -> None:
        self._queue.put(notification)

    def close(self, timeout_s: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (notification := self._queue.get()) is not None:
            data = json.dumps(as_json(notification)).encode()
            for url in self._urls:
                request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method="POST")
                try:
                    urllib.request.urlopen(request, timeout=5).close()
                except Exception as exc:  # a stub: one try
                    log.warning("alert notification to %s failed: %s", url, exc)
