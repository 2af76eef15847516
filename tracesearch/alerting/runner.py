"""The alert evaluator's loop: a thread in every service process; the one holding the lease evaluates.

Each interval: take or renew the lease (its fencing token); at a new token (taken over, or first time)
load every stored alert, since another process may have evaluated meanwhile; evaluate each rule, advance
each alert's state, store the changed ones under the token (compare-and-set on the version read; a
newer token stored means this process lost the lease: the cycle stops and sends nothing), store the
transitions as events, and hand the transitions to firing and to resolved to the dispatcher.

A notification is sent after its state is stored, so a restart (or a takeover) never sends it twice; a
process killed between the two loses that one notification (at most once; the dispatcher retries the
sending itself). A cycle stops before the lease it started under runs out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from tracesearch.alerting import examples, links
from tracesearch.alerting.evaluate import Evaluator, Sample, compare
from tracesearch.alerting.notify.model import Notification
from tracesearch.alerting.rules import Rule
from tracesearch.alerting.state import FIRING, OK, RESOLVED, AlertState, Timing, Transition, fingerprint, step
from tracesearch.services.query import QueryService
from tracesearch.storage.contracts import AlertStateStore, AlertWrite, StoredAlert

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
LEASE_INTERVALS = 3  # the lease outlives a holder by this many intervals


class Dispatcher(Protocol):
    def submit(self, notification: Notification) -> None: ...

    def remind(self, notification: Notification) -> None: ...

    def close(self, timeout_s: float = 5.0) -> None: ...


@dataclass(frozen=True)
class RunnerConfig:
    interval_s: float = 60.0
    grafana_url: str = ""
    grafana_tempo_uid: str = "tracesearch-tempo"
    base_url: str = "http://127.0.0.1:4318"
    # The tenant whose rules these are (None: the default tenant): notifications carry it as the label `tenant`.
    tenant: str | None = None

    @property
    def lease_ttl_s(self) -> float:
        return LEASE_INTERVALS * self.interval_s


class LeaseLost(Exception):
    """A stored alert carries a newer fencing token: another process holds the lease now."""


def alert_labels(rule: Rule, group: Mapping[str, str]) -> dict[str, str]:
    """An alert's labels: the rule's, its group values, alertname and severity."""
    return {**rule.labels, **group, "alertname": rule.name, "severity": rule.severity}


class AlertRunner:
    def __init__(
        self,
        store: AlertStateStore,
        query: QueryService,
        evaluator: Evaluator,
        rules: Callable[[], Sequence[Rule]],
        dispatcher: Dispatcher,
        config: RunnerConfig,
        holder: str,
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._query = query
        self._evaluator = evaluator
        self._rules = rules
        self._dispatcher = dispatcher
        self._config = config
        self.holder = holder
        self._clock = clock
        self._token: int | None = None
        self._alerts: dict[str, StoredAlert] = {}
        self._deadline = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cycles = 0  # cycles this process evaluated (tests and the bench read it)

    # -- one interval

    def tick(self) -> bool:
        """One interval's work; True when this process held the lease and evaluated."""
        started = self._clock()
        token = self._store.acquire_lease(self.holder, self._config.lease_ttl_s)
        if token is None:
            self._token = None
            return False
        if token != self._token:
            self._alerts = self._store.load_alerts()
            self._token = token
        self._deadline = started + self._config.lease_ttl_s - self._config.interval_s
        try:
            for rule in self._rules():
                self._run_rule(rule, token)
        except LeaseLost:
            log.warning("alerts: another process evaluates now (a newer lease wrote); stopping this cycle")
            self._token = None
            return False
        self.cycles += 1
        return True

    def _run_rule(self, rule: Rule, token: int) -> None:
        now_ns = int(self._clock() * NS_PER_S)
        try:
            samples = self._evaluator.evaluate(rule, now_ns)
        except Exception as exc:  # one bad rule or a store hiccup must not stop the others
            log.warning("alerts: rule %s not evaluated: %s", rule.name, exc)
            return
        seen: dict[str, Sample] = {fingerprint(rule.name, alert_labels(rule, s.labels)): s for s in samples}
        mine = {fp for fp, stored in self._alerts.items() if stored.alert.rule == rule.name}
        for fp in sorted(mine | set(seen)):
            self._advance(rule, fp, seen.get(fp), now_ns, token)

    def _advance(self, rule: Rule, fp: str, sample: Sample | None, now_ns: int, token: int) -> None:
        for _attempt in range(2):
            stored = self._alerts.get(fp)
            if stored is not None and stored.token > token:
                raise LeaseLost
            previous = stored.alert if stored is not None and stored.alert.state != OK else None
            if previous is None and stored is not None and stored.alert.state == OK and sample is None:
                return
            new, transitions = self._next(rule, previous, sample, now_ns)
            if new is None and previous is None:
                return  # ok and stays ok: nothing to write
            if self._clock() > self._deadline:
                raise LeaseLost
            alert = new or _ok(previous)
            written, version = self._store.write_alert(alert, token, stored.version if stored else None)
            if written == AlertWrite.FENCED:
                raise LeaseLost
            if written == AlertWrite.WRITTEN:
                self._alerts[fp] = StoredAlert(alert, token, version)
                self._publish(rule, alert, transitions, token, sample)
                if alert.state == FIRING and not transitions:
                    self._remind(rule, alert, now_ns, sample)
                return
            # Written meanwhile by an older holder: decide again from what it wrote.
            fresh = self._store.get_alert(fp)
            if fresh is None:
                self._alerts.pop(fp, None)
            else:
                self._alerts[fp] = fresh

    def _next(
        self, rule: Rule, previous: AlertState | None, sample: Sample | None, now_ns: int
    ) -> tuple[AlertState | None, list[Transition]]:
        labels = alert_labels(rule, sample.labels) if sample else (previous.labels if previous else {})
        value = sample.value if sample else None
        condition = value is not None and compare(rule.op, value, rule.threshold)
        timing = Timing(rule.for_s, rule.keep_firing_for_s)
        new, transitions = step(previous, rule.name, labels, condition, value, now_ns, timing)
        if new is None:
            return None, transitions
        examples_now = new.example_trace_ids
        if any(t.state == FIRING for t in transitions) and sample is not None:
            examples_now = examples.example_trace_ids(self._query, rule, sample.labels, now_ns)
        new = replace(
            new,
            threshold=rule.threshold,
            op=rule.op,
            annotations=rule.render_annotations(new.value, new.labels),
            example_trace_ids=examples_now,
            evaluated_at_ns=now_ns,
        )
        return new, transitions

    def _publish(
        self, rule: Rule, alert: AlertState, transitions: Iterable[Transition], token: int, sample: Sample | None
    ) -> None:
        events = [
            replace(
                t,
                severity=rule.severity,
                threshold=rule.threshold,
                op=rule.op,
                example_trace_ids=alert.example_trace_ids,
            )
            for t in transitions
        ]
        if not events:
            return
        try:
            self._store.add_events(events, token)
        except Exception as exc:  # the history misses it; the state and the notification do not
            log.warning("alerts: could not store events of %s: %s", rule.name, exc)
        for transition in events:
            if transition.state in (FIRING, RESOLVED):
                self._dispatcher.submit(self._notification(rule, transition, alert, sample))

    def _remind(self, rule: Rule, alert: AlertState, now_ns: int, sample: Sample | None) -> None:
        """Still firing: the dispatcher decides whether to say so again (repeat interval, Alertmanager's
        re-send before its resolve_timeout)."""
        still = Transition(
            rule=rule.name,
            fingerprint=alert.fingerprint,
            labels=dict(alert.labels),
            previous=FIRING,
            state=FIRING,
            at_ns=now_ns,
            value=alert.value,
            starts_at_ns=alert.firing_since_ns,
            severity=rule.severity,
            threshold=rule.threshold,
            op=rule.op,
            example_trace_ids=alert.example_trace_ids,
        )
        self._dispatcher.remind(self._notification(rule, still, alert, sample))

    def _notification(
        self, rule: Rule, transition: Transition, alert: AlertState, sample: Sample | None
    ) -> Notification:
        window_ns = int(rule.window_s * NS_PER_S)
        group = sample.labels if sample else _group_labels(rule, transition.labels)
        traceql = examples.search_filter(rule, group)
        c = self._config
        url = links.search_url(
            traceql,
            transition.at_ns - window_ns,
            transition.at_ns,
            grafana_url=c.grafana_url,
            tempo_uid=c.grafana_tempo_uid,
            base_url=c.base_url,
        )
        return Notification(
            rule=rule.name,
            state=transition.state,
            labels={**transition.labels, "tenant": c.tenant} if c.tenant else dict(transition.labels),
            annotations=dict(alert.annotations),
            value=transition.value,
            threshold=rule.threshold,
            op=rule.op,
            window_s=rule.window_s,
            starts_at=_utc(transition.starts_at_ns),
            ends_at=_utc(transition.ends_at_ns) if transition.ends_at_ns else None,
            search_url=url,
            example_trace_ids=transition.example_trace_ids,
            fingerprint=transition.fingerprint,
        )

    # -- the thread

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="alerts-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give the lease up, so another process takes over without waiting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self._store.release_lease(self.holder)
        except Exception as exc:  # exiting anyway: the lease expires by itself
            log.warning("alerts: could not release the lease: %s", exc)
        self._dispatcher.close()

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.tick()
            except Exception as exc:  # the next interval retries; the service goes on
                log.warning("alerts: evaluation failed, retrying in %.0fs: %s", self._config.interval_s, exc)
            if self._stop.wait(max(0.0, self._config.interval_s - (time.monotonic() - started))):
                return


def _ok(previous: AlertState | None) -> AlertState:
    assert previous is not None
    return replace(previous, state=OK)


def _group_labels(rule: Rule, labels: Mapping[str, str]) -> dict[str, str]:
    skip = {*rule.labels, "alertname", "severity"}
    return {k: v for k, v in labels.items() if k not in skip}


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / NS_PER_S, UTC)
