"""The Dispatcher: takes notifications from the evaluator without ever blocking or raising, and on its own
thread groups, de-duplicates, repeats and delivers them, retrying what may succeed later.

How the evaluator drives it:

- ``submit(n)`` on every transition to firing or resolved. A transition handed over twice (same
  fingerprint, state and ``starts_at``: a re-run cycle, a replayed event) is sent once.
- ``remind(n)`` on every evaluation cycle for each alert that is *still* firing. That is what drives the
  repeat interval (webhook and Slack: again every ``repeat_interval_s``, counted from ``starts_at`` so the
  schedule survives a restart) and Alertmanager's re-sends (it resolves an alert nobody re-sent within its
  ``resolve_timeout``; Prometheus re-sends every minute, so does this). A reminder of an alert this process
  never saw (it was restarted, or took the lease over from another) is *not* sent to webhook or Slack:
  the process that saw the transition notified it. Alertmanager gets it (it de-duplicates by itself).

Grouping: notifications whose group-by labels have the same values wait ``group_wait_s`` after the first
of them, then each notifier gets them in one call. Delivery: up to ``attempts`` tries per call, with
exponential backoff and jitter, on 5xx, 429, timeouts and connection errors; a 4xx is logged with the
receiver's answer and not retried. A call that failed for good is logged and counted, and its alerts are
due again at the next ``submit`` or ``remind``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from tracesearch.alerting.notify.http import DeliveryFailed, Notifier
from tracesearch.alerting.notify.model import RESOLVED, Group, Notification, group_key, group_labels

if TYPE_CHECKING:
    from tracesearch.settings import Settings

log = logging.getLogger(__name__)

Key = tuple[str, str, datetime]  # (fingerprint, state, starts_at)
PRUNE_EVERY_S = 60.0
FORGET_AFTER_S = 3600.0  # past the repeat interval: a record nobody asked about is dropped


class NotifyMetrics(Protocol):
    """Counters per notifier kind (``tracesearch.prometheus.NotificationMetrics`` puts them on /metrics)."""

    def sent(self, notifier: str, alerts: int) -> None: ...

    def failed(self, notifier: str, alerts: int) -> None: ...

    def retried(self, notifier: str) -> None: ...

    def dropped(self, reason: str) -> None: ...


class NoMetrics:
    def sent(self, notifier: str, alerts: int) -> None:
        pass

    def failed(self, notifier: str, alerts: int) -> None:
        pass

    def retried(self, notifier: str) -> None:
        pass

    def dropped(self, reason: str) -> None:
        pass


@dataclass(frozen=True)
class Policy:
    group_by: tuple[str, ...] = ("alertname",)
    group_wait_s: float = 10.0
    repeat_interval_s: float = 4 * 3600.0
    resend_s: float = 60.0  # notifiers with ``resends`` (Alertmanager): still-firing alerts this often
    attempts: int = 5
    backoff_s: float = 1.0  # first retry after about this long, doubling each time
    max_backoff_s: float = 30.0
    queue_size: int = 10_000


@dataclass
class _Record:
    key: Key
    sent_at: float | None  # None: its last delivery failed, so it is due again
    seen_at: float


@dataclass
class _Batch:
    labels: dict[str, str]
    due: float  # monotonic
    by_notifier: dict[int, dict[str, Notification]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Item:
    notification: Notification
    reminder: bool


@dataclass(frozen=True)
class _Flush:
    done: threading.Event


_STOP = object()


class Dispatcher:
    def __init__(
        self,
        notifiers: Sequence[Notifier],
        policy: Policy | None = None,
        *,
        metrics: NotifyMetrics | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``clock`` (wall time, seconds) decides repeats against ``starts_at``; ``sleep`` waits between
        retries (by default it ends early when ``close`` gives up); tests pass fakes of both."""
        self._notifiers = list(notifiers)
        self._policy = policy or Policy()
        self._metrics = metrics or NoMetrics()
        self._clock = clock
        self._abandon = threading.Event()
        self._sleep = sleep or self._abandon.wait
        self._jitter = jitter
        self._queue: queue.Queue[object] = queue.Queue(maxsize=self._policy.queue_size)
        self._records: list[dict[str, _Record]] = [{} for _ in self._notifiers]
        self._batches: dict[str, _Batch] = {}
        self._pruned_at = 0.0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: NotifyMetrics | None = None) -> Dispatcher:
        """The notifiers and policy the alert notification settings name; counters on /metrics by default."""
        from tracesearch.alerting.notify.configure import dispatcher_from_settings  # configure imports this module

        return dispatcher_from_settings(settings, metrics)

    @property
    def notifiers(self) -> tuple[Notifier, ...]:
        return tuple(self._notifiers)

    def submit(self, notification: Notification) -> None:
        """A transition to firing or resolved. Never blocks, never raises."""
        self._put(_Item(notification, reminder=False))

    def remind(self, notification: Notification) -> None:
        """An alert still firing at this evaluation cycle. Never blocks, never raises."""
        self._put(_Item(notification, reminder=True))

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send what waits for its group now, and wait until everything handed over so far was handled."""
        if not self._notifiers or self._closed:
            return True
        marker = _Flush(threading.Event())
        try:
            self._ensure_thread()
            self._queue.put(marker, timeout=timeout_s)
        except (queue.Full, RuntimeError):
            return False
        return marker.done.wait(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued or waiting for its group (retries included) within ``timeout_s``, then stop."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            self._abandon.set()  # retries stop waiting; what is left is logged as not sent
            log.warning("alert notifications: not all delivered within %.1fs of closing", timeout_s)

    # The evaluator's side.

    def _put(self, item: _Item) -> None:
        try:
            if not self._notifiers:
                return
            if self._closed:
                self._metrics.dropped("closed")
                return
            self._ensure_thread()
            self._queue.put_nowait(item)
        except queue.Full:
            self._metrics.dropped("queue_full")
            log.warning(
                "alert notifications: queue full (%d), %s of %s dropped",
                self._policy.queue_size,
                item.notification.state,
                item.notification.rule,
            )
        except Exception:  # never into the evaluator
            log.exception("alert notifications: could not queue a notification of %s", item.notification.rule)

    def _ensure_thread(self) -> None:
        # Started on first use, not in __init__: under gunicorn the Dispatcher may be built before the fork.
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alert-notify", daemon=True)
                self._thread.start()

    # The worker thread.

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._wait_s())
            except queue.Empty:
                item = None
            try:
                if item is _STOP:
                    self._deliver_due(everything=True)
                    return
                if isinstance(item, _Flush):
                    self._deliver_due(everything=True)
                    item.done.set()
                    continue
                if isinstance(item, _Item):
                    self._accept(item)
                self._deliver_due(everything=False)
            except Exception:  # the thread must outlive any one bad notification or notifier
                log.exception("alert notifications: worker error")

    def _wait_s(self) -> float | None:
        if not self._batches:
            return None
        return max(0.0, min(batch.due for batch in self._batches.values()) - time.monotonic())

    def _accept(self, item: _Item) -> None:
        notification = item.notification
        now = self._clock()
        self._prune(now)
        labels = group_labels(notification.labels, self._policy.group_by)
        key = group_key(labels)
        for index, notifier in enumerate(self._notifiers):
            if self._due(index, notifier, notification, item.reminder, now):
                batch = self._batches.get(key)
                if batch is None:
                    batch = self._batches[key] = _Batch(labels, time.monotonic() + self._policy.group_wait_s)
                # The newest word on an alert wins within one group wait (firing then resolved: resolved).
                batch.by_notifier.setdefault(index, {})[notification.fingerprint] = notification

    def _due(self, index: int, notifier: Notifier, n: Notification, reminder: bool, now: float) -> bool:
        """Whether this notifier is to get ``n`` now; the record says what it got last."""
        records = self._records[index]
        record = records.get(n.fingerprint)
        key: Key = (n.fingerprint, n.state, n.starts_at)
        interval = self._interval(notifier)
        resends = getattr(notifier, "resends", False)
        if record is None or record.key != key:
            if reminder and record is None and not resends:
                # Notified by the process that saw the transition; keep its repeat schedule.
                records[n.fingerprint] = _Record(key, self._last_boundary(n, now, interval), now)
                return False
            records[n.fingerprint] = _Record(key, now, now)
            return True
        record.seen_at = now
        if n.state == RESOLVED:
            return record.sent_at is None  # a resolve goes out once (again only if it failed)
        if record.sent_at is None or now >= record.sent_at + interval:
            record.sent_at = now
            return True
        return False

    def _interval(self, notifier: Notifier) -> float:
        return self._policy.resend_s if getattr(notifier, "resends", False) else self._policy.repeat_interval_s

    @staticmethod
    def _last_boundary(n: Notification, now: float, interval: float) -> float:
        start = n.starts_at.timestamp()
        if now <= start or interval <= 0:
            return now
        return start + ((now - start) // interval) * interval

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        horizon = self._policy.repeat_interval_s + FORGET_AFTER_S
        for records in self._records:
            for fingerprint in [f for f, r in records.items() if now - r.seen_at > horizon]:
                del records[fingerprint]

    def _deliver_due(self, everything: bool) -> None:
        now = time.monotonic()
        for key in [k for k, b in self._batches.items() if everything or b.due <= now]:
            batch = self._batches.pop(key)
            for index, alerts in batch.by_notifier.items():
                group = Group(key, batch.labels, tuple(alerts.values()))
                if not self._deliver(self._notifiers[index], group):
                    self._mark_failed(index, group)

    def _deliver(self, notifier: Notifier, group: Group) -> bool:
        """One call with retries; True once the receiver took it."""
        policy = self._policy
        for attempt in range(1, policy.attempts + 1):
            try:
                notifier.send(group)
            except DeliveryFailed as failure:
                if not failure.retryable or attempt == policy.attempts or self._abandon.is_set():
                    return self._gave_up(notifier, group, str(failure), attempt)
                self._metrics.retried(notifier.kind)
                delay = min(policy.max_backoff_s, policy.backoff_s * 2 ** (attempt - 1)) * (0.5 + self._jitter())
                log.info(
                    "alert notifications: %s %s: %s; retry %d in %.1fs",
                    notifier.kind,
                    notifier.target,
                    failure,
                    attempt,
                    delay,
                )
                self._sleep(delay)
                continue
            except Exception as error:  # a notifier's bug must not stop the others
                log.exception("alert notifications: %s %s failed", notifier.kind, notifier.target)
                return self._gave_up(notifier, group, type(error).__name__, attempt)
            self._metrics.sent(notifier.kind, len(group.alerts))
            return True
        return False

    def _gave_up(self, notifier: Notifier, group: Group, reason: str, attempts: int) -> bool:
        self._metrics.failed(notifier.kind, len(group.alerts))
        log.error(
            "alert notifications: %s %s: %d alert(s) of %s not delivered after %d attempt(s): %s",
            notifier.kind,
            notifier.target,
            len(group.alerts),
            group.key,
            attempts,
            reason,
        )
        return False

    def _mark_failed(self, index: int, group: Group) -> None:
        records = self._records[index]
        for n in group.alerts:
            record = records.get(n.fingerprint)
            if record is not None and record.key == (n.fingerprint, n.state, n.starts_at):
                record.sent_at = None
