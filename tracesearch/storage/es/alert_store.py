"""AlertStateStore on Elasticsearch: ``<prefix>-alerts`` (the lease and one document per alert) and
``<prefix>-alert-events`` (every transition, with ``@timestamp``, ``text`` and ``tags`` so Grafana's
Elasticsearch data source shows them as annotations).

The lease is S2's (``sampling_store``: ``op_type=create`` first, then ``if_seq_no``/``if_primary_term``)
plus a fencing token: a counter in the lease document, raised each time the lease changes hands or is
taken after expiring, kept on renewals. Every alert document carries the token it was written under, and
is written only over the version its writer read (compare-and-set on ``_seq_no``): a holder whose lease
was taken over and who writes late finds the version changed (409), reads the document again, sees a
newer token and is refused (``FENCED``) — an older token never overwrites a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import elasticsearch
from elasticsearch import Elasticsearch

from tracesearch.alerting.state import AlertState, Transition, event, is_current, view
from tracesearch.alerting.views import AlertEvent, AlertView
from tracesearch.storage.contracts import AlertWrite, StateVersion, StorageError, StoredAlert
from tracesearch.storage.es.search import call, search
from tracesearch.storage.es.versioned import create_index, get_versioned, write_versioned

LEASE_ID = "alerts-lease"
MS_PER_S = 1000.0
NS_PER_MS = 1_000_000
MAX_ALERTS = 10_000  # alerts loaded at a takeover: rules x label sets; more than this is not supported

ALERT_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "kind": {"type": "keyword"},  # "lease" or "alert"
        "holder": {"type": "keyword"},
        "expires_at_ms": {"type": "long"},
        "token": {"type": "long"},
        "rule": {"type": "keyword"},
        "fingerprint": {"type": "keyword"},
        "state": {"type": "keyword"},
        "labels": {"type": "object", "enabled": False},
        "value": {"type": "double"},
        "active_since_ns": {"type": "long"},
        "firing_since_ns": {"type": "long"},
        "last_true_ns": {"type": "long"},
        "resolved_at_ns": {"type": "long"},
        "threshold": {"type": "double"},
        "op": {"type": "keyword"},
        "annotations": {"type": "object", "enabled": False},
        "example_trace_ids": {"type": "keyword"},
        "evaluated_at_ns": {"type": "long"},
        "@timestamp": {"type": "date", "format": "epoch_millis"},
    },
}
EVENT_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        # What Grafana's Elasticsearch annotation query reads: time, text and tags.
        "@timestamp": {"type": "date", "format": "epoch_millis"},
        "text": {"type": "text"},
        "tags": {"type": "keyword"},
        "rule": {"type": "keyword"},
        "fingerprint": {"type": "keyword"},
        "state": {"type": "keyword"},
        "previous": {"type": "keyword"},
        "severity": {"type": "keyword"},
        "labels": {"type": "object", "enabled": False},
        "value": {"type": "double"},
        "at_ns": {"type": "long"},
        "starts_at_ns": {"type": "long"},
        "ends_at_ns": {"type": "long"},
        "threshold": {"type": "double"},
        "op": {"type": "keyword"},
        "example_trace_ids": {"type": "keyword"},
        "token": {"type": "long"},
    },
}


def alerts_index(prefix: str) -> str:
    # Not daily names: the retention (exactly <prefix>-<family>-YYYY-MM-DD) never deletes them.
    return f"{prefix}-alerts"


def events_index(prefix: str) -> str:
    return f"{prefix}-alert-events"


def event_text(event: Transition) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(event.labels.items()))
    return f"{event.rule} {event.previous} → {event.state}: value {event.value:.6g}" + (
        f" ({labels})" if labels else ""
    )


class EsAlertStore:
    def __init__(
        self, client: Elasticsearch, index_prefix: str, replicas: int = 1, clock: Callable[[], float] = time.time
    ):
        self._client = client
        self._alerts = alerts_index(index_prefix)
        self._events = events_index(index_prefix)
        self._replicas = replicas
        self._clock = clock
        self._created: set[str] = set()

    # -- the lease

    def acquire_lease(self, holder: str, ttl_s: float) -> int | None:
        now = self._clock()
        found, version = self._get(LEASE_ID)
        expires_ms = round((now + ttl_s) * MS_PER_S)
        if found is None:
            token = 1
        elif found["holder"] != holder and found["expires_at_ms"] > now * MS_PER_S:
            return None
        elif found["holder"] == holder and found["expires_at_ms"] > now * MS_PER_S:
            token = int(found["token"])  # a renewal keeps the token
        else:
            token = int(found["token"]) + 1
        document = {"kind": "lease", "holder": holder, "expires_at_ms": expires_ms, "token": token}
        return token if self._write(LEASE_ID, document, version) else None

    def release_lease(self, holder: str) -> None:
        found, version = self._get(LEASE_ID)
        if found is None or found["holder"] != holder:
            return
        # Expired at once rather than deleted: the next holder's token must still count on from this one.
        self._write(LEASE_ID, {**found, "expires_at_ms": 0}, version)

    # -- alerts

    def load_alerts(self) -> dict[str, StoredAlert]:
        self._ensure(self._alerts, ALERT_MAPPINGS)
        # A takeover reads what the previous holder wrote up to its last moment: refresh, then search.
        call(lambda: self._client.indices.refresh(index=self._alerts))
        body = call(
            lambda: self._client.search(
                index=self._alerts,
                query={"term": {"kind": "alert"}},
                size=MAX_ALERTS,
                seq_no_primary_term=True,
            )
        ).body
        stored = (_stored(hit) for hit in body["hits"]["hits"])
        return {s.alert.fingerprint: s for s in stored}

    def get_alert(self, fingerprint: str) -> StoredAlert | None:
        found, version = self._get(fingerprint)
        return StoredAlert(_alert(found), int(found["token"]), version) if found is not None else None

    def write_alert(self, alert: AlertState, token: int, version: StateVersion) -> tuple[str, StateVersion]:
        document = _alert_document(alert, token, self._clock())
        options: dict[str, Any] = {"op_type": "create"}
        if version is not None:
            options = {"if_seq_no": version[0], "if_primary_term": version[1]}

        def index() -> StateVersion:
            try:
                body = self._client.index(index=self._alerts, id=alert.fingerprint, document=document, **options).body
            except elasticsearch.ConflictError:
                return None
            return int(body["_seq_no"]), int(body["_primary_term"])

        self._ensure(self._alerts, ALERT_MAPPINGS)
        written = call(index)
        if written is not None:
            return AlertWrite.WRITTEN, written
        stored = self.get_alert(alert.fingerprint)
        fenced = stored is not None and stored.token > token
        return (AlertWrite.FENCED if fenced else AlertWrite.CONFLICT), None

    def current(self) -> list[AlertView]:
        # A read: no index is created for it (none yet: no alerts), and near-real-time is enough.
        query = {"query": {"term": {"kind": "alert"}}, "size": MAX_ALERTS, "seq_no_primary_term": True}
        body = search(self._client, self._alerts, query)
        hits = body.get("hits", {}).get("hits", [])
        found = [view(a) for a in (_stored(hit).alert for hit in hits) if is_current(a)]
        return sorted(found, key=lambda a: (a.rule, a.fingerprint))

    # -- events

    def add_events(self, events: Sequence[Transition], token: int) -> None:
        if not events:
            return
        self._ensure(self._events, EVENT_MAPPINGS)
        operations: list[dict[str, Any]] = []
        for one in events:
            event_id = f"{one.fingerprint}-{one.state}-{one.at_ns}"
            operations += [{"create": {"_index": self._events, "_id": event_id}}, _event_document(one, token)]
        # wait_for: transitions are rare, and the history (API, Grafana annotations) then shows them at once.
        answer = call(lambda: self._client.bulk(operations=operations, refresh="wait_for")).body
        failed = [
            item["create"]["error"]
            for item in answer.get("items", [])
            if item["create"].get("status", 200) >= 300 and item["create"].get("status") != 409
        ]
        if failed:
            raise StorageError(f"alert events refused: {failed[:3]}")

    def history(self, rule: str | None, since_ns: int | None, limit: int) -> list[AlertEvent]:
        filters: list[dict[str, Any]] = [{"range": {"at_ns": {"gte": since_ns or 0}}}]
        if rule is not None:
            filters.append({"term": {"rule": rule}})
        body = search(
            self._client,
            self._events,
            {
                "query": {"bool": {"filter": filters}},
                "sort": [{"at_ns": {"order": "desc", "unmapped_type": "long"}}],
                "size": limit,
            },
        )
        return [event(_transition(hit["_source"])) for hit in body.get("hits", {}).get("hits", [])]

    # -- Elasticsearch

    def _get(self, doc_id: str) -> tuple[dict[str, Any] | None, StateVersion]:
        self._ensure(self._alerts, ALERT_MAPPINGS)
        return get_versioned(self._client, self._alerts, doc_id)

    def _write(self, doc_id: str, document: dict[str, Any], version: StateVersion) -> bool:
        return write_versioned(self._client, self._alerts, doc_id, document, version)

    def _ensure(self, index: str, mappings: dict[str, Any]) -> None:
        if index not in self._created:
            create_index(self._client, index, mappings, self._replicas)
            self._created.add(index)


def _alert_document(alert: AlertState, token: int, now_s: float) -> dict[str, Any]:
    return {
        "kind": "alert",
        "token": token,
        "rule": alert.rule,
        "fingerprint": alert.fingerprint,
        "state": alert.state,
        "labels": dict(alert.labels),
        "value": alert.value,
        "active_since_ns": alert.active_since_ns,
        "firing_since_ns": alert.firing_since_ns,
        "last_true_ns": alert.last_true_ns,
        "resolved_at_ns": alert.resolved_at_ns,
        "threshold": alert.threshold,
        "op": alert.op,
        "annotations": dict(alert.annotations),
        "example_trace_ids": list(alert.example_trace_ids),
        "evaluated_at_ns": alert.evaluated_at_ns,
        "@timestamp": round(now_s * MS_PER_S),
    }


def _alert(source: dict[str, Any]) -> AlertState:
    return AlertState(
        rule=source["rule"],
        labels=dict(source["labels"]),
        state=source["state"],
        value=float(source["value"]),
        active_since_ns=int(source["active_since_ns"]),
        firing_since_ns=int(source["firing_since_ns"]),
        last_true_ns=int(source["last_true_ns"]),
        resolved_at_ns=int(source["resolved_at_ns"]),
        fingerprint=source["fingerprint"],
        threshold=float(source.get("threshold", 0.0)),
        op=source.get("op", ""),
        annotations=dict(source.get("annotations") or {}),
        example_trace_ids=tuple(source.get("example_trace_ids") or ()),
        evaluated_at_ns=int(source.get("evaluated_at_ns", 0)),
    )


def _stored(hit: dict[str, Any]) -> StoredAlert:
    source = hit["_source"]
    return StoredAlert(_alert(source), int(source["token"]), (int(hit["_seq_no"]), int(hit["_primary_term"])))


def _event_document(event: Transition, token: int) -> dict[str, Any]:
    return {
        "@timestamp": event.at_ns // NS_PER_MS,
        "text": event_text(event),
        "tags": [event.rule, event.state, *([event.severity] if event.severity else [])],
        "rule": event.rule,
        "fingerprint": event.fingerprint,
        "state": event.state,
        "previous": event.previous,
        "severity": event.severity,
        "labels": dict(event.labels),
        "value": event.value,
        "at_ns": event.at_ns,
        "starts_at_ns": event.starts_at_ns,
        "ends_at_ns": event.ends_at_ns,
        "threshold": event.threshold,
        "op": event.op,
        "example_trace_ids": list(event.example_trace_ids),
        "token": token,
    }


def _transition(source: dict[str, Any]) -> Transition:
    return Transition(
        rule=source["rule"],
        fingerprint=source["fingerprint"],
        labels=dict(source["labels"]),
        previous=source["previous"],
        state=source["state"],
        at_ns=int(source["at_ns"]),
        value=float(source["value"]),
        starts_at_ns=int(source["starts_at_ns"]),
        ends_at_ns=int(source["ends_at_ns"]),
        severity=source["severity"],
        threshold=float(source.get("threshold", 0.0)),
        op=source.get("op", ""),
        example_trace_ids=tuple(source.get("example_trace_ids") or ()),
    )
