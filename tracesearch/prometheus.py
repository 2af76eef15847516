"""One vocabulary of ingest counters for every transport, exposed in Prometheus text format.

Under gunicorn every worker counts in its own memory; with ``PROMETHEUS_MULTIPROC_DIR`` set
(gunicorn.conf.py sets it) ``/metrics`` adds up all workers and the local ingesters.

Tenants: the span metrics and service-graph series, the service graph's own counters and the ingest
limits' refusals carry a ``tenant`` label: the tenant's name, or the empty string for the default
tenant. Empty, not "default": "default" is a valid tenant name, while no tenant can be named "", and
Prometheus treats an empty label as no label, so the default tenant's series are stored exactly as they
were before tenants (dashboards and Grafana's Service Graph queries keep working, and add up every
tenant unless they select one). ``exposition(tenant)`` answers a tenant's request with its own labelled
series only; the series without the label (ingest counters, Kafka lag, tail sampling, alerting, the
process's) count every tenant's traffic together and are left out of a tenant's page, as they would tell
one tenant about the others'.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric

from tracesearch.model import SpanKind
from tracesearch.servicegraph import histogram
from tracesearch.servicegraph.aggregator import Snapshot
from tracesearch.servicegraph.model import KIND_LABELS, STATUS_LABELS
from tracesearch.servicegraph.stage import Counters

REQUESTS = Counter(
    "tracesearch_ingest_requests_total", "Ingest requests by transport and HTTP status.", ["transport", "status"]
)
SPANS_RECEIVED = Counter("tracesearch_spans_received_total", "Spans decoded from requests or messages.", ["transport"])
SPANS_REJECTED = Counter(
    "tracesearch_spans_rejected_total", "Spans refused, with the stage that refused them.", ["transport", "stage"]
)
INGEST_REFUSED = Counter(
    "tracesearch_ingest_refused_spans_total",
    "Spans refused by a tenant's ingest limits (tenant empty: the default tenant's), by reason: rate (429), "
    "request_spans or burst (413).",
    ["tenant", "reason"],
)
SPANS_PRODUCED = Counter("tracesearch_spans_produced_total", "Spans acknowledged by Kafka.")
SPANS_INDEXED = Counter("tracesearch_spans_indexed_total", "Spans stored in Elasticsearch (duplicates included).")
SPANS_DUPLICATE = Counter("tracesearch_spans_duplicate_total", "Spans Elasticsearch already had (409).")
BULK_RETRIES = Counter("tracesearch_bulk_retries_total", "Bulk writes retried after 429/5xx/connection errors.")
INDICES_DELETED = Counter("tracesearch_indices_deleted_total", "Daily indices deleted by the retention.")
SPANS_DEAD_LETTERED = Counter("tracesearch_spans_dead_lettered_total", "Spans sent to the dead-letter topic.")
BULK_SECONDS = Histogram(
    "tracesearch_bulk_duration_seconds",
    "Duration of one Elasticsearch bulk write.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "tracesearch_consumer_lag_messages",
    "Messages not yet consumed, per partition.",
    ["topic", "partition"],
    multiprocess_mode="max",
)

# Tail sampling (Kafka ingesters with a policy file).
TAIL_TRACES = Counter(
    "tracesearch_tail_sampling_traces_total",
    "Traces decided, by the policy that kept them (dropped: none did).",
    ["policy"],
)
TAIL_SPANS = Counter(
    "tracesearch_tail_sampling_spans_total", "Spans of the traces decided, by the same label.", ["policy"]
)
TAIL_EARLY = Counter(
    "tracesearch_tail_sampling_decided_early_total",
    "Traces decided before their wait because the buffer reached its bounds (also in traces_total).",
)
TAIL_LATE = Counter(
    "tracesearch_tail_sampling_late_spans_total",
    "Spans that came after their trace was decided and followed the decision.",
    ["policy"],
)
TAIL_BUFFERED_TRACES = Gauge(
    "tracesearch_tail_sampling_buffered_traces", "Traces waiting for a decision.", multiprocess_mode="livesum"
)
TAIL_BUFFERED_SPANS = Gauge(
    "tracesearch_tail_sampling_buffered_spans", "Spans waiting for a decision.", multiprocess_mode="livesum"
)
TAIL_BUFFERED_BYTES = Gauge(
    "tracesearch_tail_sampling_buffered_bytes",
    "Encoded bytes of the spans waiting for a decision.",
    multiprocess_mode="livesum",
)

# Alert rules (TRACESEARCH_ALERTS_RULES_FILE): a file made invalid keeps the last good rules; these say so.
# Each process checks the file itself: the lowest validity and the most rules any live process holds.
ALERT_RULES_FILE_VALID = Gauge(
    "tracesearch_alert_rules_file_valid",
    "1: the alert rules file as it is now is loaded; 0: it is invalid or unreadable (the last good rules are kept).",
    multiprocess_mode="livemin",
)
ALERT_RULES_LOADED = Gauge(
    "tracesearch_alert_rules_loaded", "Alert rules loaded (evaluated).", multiprocess_mode="livemax"
)


def publish_alert_rules(valid: bool, loaded: int) -> None:
    """The rule set's state after a check (``alerting.ruleset.StateListener``)."""
    ALERT_RULES_FILE_VALID.set(1 if valid else 0)
    ALERT_RULES_LOADED.set(loaded)


class TailSamplingMetrics:
    """The tail sampler's counts, as Prometheus series (``sampling.tail.sampler.TailMetrics``)."""

    def decided(self, label: str, traces: int, spans: int, early: bool) -> None:
        TAIL_TRACES.labels(label).inc(traces)
        TAIL_SPANS.labels(label).inc(spans)
        if early:
            TAIL_EARLY.inc(traces)

    def late(self, label: str, spans: int) -> None:
        TAIL_LATE.labels(label).inc(spans)

    def buffered(self, traces: int, spans: int, size: int) -> None:
        TAIL_BUFFERED_TRACES.set(traces)
        TAIL_BUFFERED_SPANS.set(spans)
        TAIL_BUFFERED_BYTES.set(size)


# Service graph and span metrics, named and labelled as Tempo's metrics generator does, so Grafana's
# Service Graph and its side table work off a Prometheus that scrapes /metrics.
TENANT: Final = "tenant"  # the label
_EDGE = [TENANT, "client", "server", "connection_type"]
_SPAN = [TENANT, "service", "span_name", "span_kind", "status_code"]
LATENCY_BUCKETS = histogram.PROMETHEUS_BOUNDS
GRAPH_REQUESTS = Counter("traces_service_graph_request_total", "Calls between two services.", _EDGE)
GRAPH_FAILED = Counter("traces_service_graph_request_failed_total", "Failed calls between two services.", _EDGE)
GRAPH_SERVER_SECONDS = Histogram(
    "traces_service_graph_request_server_seconds", "Call latency seen by the server.", _EDGE, buckets=LATENCY_BUCKETS
)
GRAPH_CLIENT_SECONDS = Histogram(
    "traces_service_graph_request_client_seconds", "Call latency seen by the client.", _EDGE, buckets=LATENCY_BUCKETS
)
SPAN_CALLS = Counter("traces_spanmetrics_calls_total", "Spans by service, name, kind and status.", _SPAN)
SPAN_LATENCY = Histogram("traces_spanmetrics_latency", "Span duration.", _SPAN, buckets=LATENCY_BUCKETS)
GRAPH_EXPIRED = Counter(
    "tracesearch_servicegraph_expired_unpaired_total",
    "Child spans whose parent was found neither here nor stored.",
    [TENANT],
)
GRAPH_EVICTED = Counter(
    "tracesearch_servicegraph_evicted_total", "Spans let go before their wait window (max pending reached).", [TENANT]
)
GRAPH_OVERFLOW = Counter(
    "tracesearch_servicegraph_series_overflow_total", "Spans or calls folded into the __overflow__ label set.", [TENANT]
)
GRAPH_DROPPED = Counter(
    "tracesearch_servicegraph_aggregates_dropped_total",
    "Aggregates dropped while Elasticsearch stayed unavailable.",
    [TENANT],
)


def tenant_label(tenant: str | None) -> str:
    """The ``tenant`` label's value: the tenant's name, "" for the default tenant."""
    return tenant or ""


def _add_histogram(child: Any, sparse: dict[int, int], sum_s: float) -> None:
    """Add whole bucket counts to a histogram child: ``observe`` once per span would cost ~3 µs each
    in multiprocess mode; our buckets fold exactly into the Prometheus ones. Relies on
    prometheus_client keeping non-cumulative ``_buckets`` and ``_sum`` values (stable since 0.4)."""
    for bucket, count in zip(child._buckets, histogram.prometheus_counts(sparse), strict=True):
        if count:
            bucket.inc(count)
    child._sum.inc(sum_s)


def servicegraph_publisher(tenant: str | None) -> Callable[[Snapshot, Counters], None]:
    """What ``tenant``'s service-graph stage publishes its flushes with."""
    return partial(publish_servicegraph, tenant=tenant)


def publish_servicegraph(snapshot: Snapshot, counters: Counters, tenant: str | None = None) -> None:
    """Add one flush's aggregates to the Prometheus series, labelled with ``tenant``."""
    label = tenant_label(tenant)
    for (_, (client, server, connection_type)), stats in snapshot.edges.items():
        labels = (label, client, server, connection_type)
        GRAPH_REQUESTS.labels(*labels).inc(stats.calls)
        if stats.errors:
            GRAPH_FAILED.labels(*labels).inc(stats.errors)
        _add_histogram(GRAPH_SERVER_SECONDS.labels(*labels), stats.buckets, stats.sum_ns / 1e9)
        if stats.client_buckets:
            _add_histogram(GRAPH_CLIENT_SECONDS.labels(*labels), stats.client_buckets, stats.client_sum_ns / 1e9)
    for (_, (service, name, kind, status)), stats in snapshot.spans.items():
        span_labels = (label, service, name, KIND_LABELS[SpanKind(kind)], STATUS_LABELS[status])
        SPAN_CALLS.labels(*span_labels).inc(stats.calls)
        _add_histogram(SPAN_LATENCY.labels(*span_labels), stats.buckets, stats.sum_ns / 1e9)
    for counter, delta in (
        (GRAPH_EXPIRED, counters.expired_unpaired),
        (GRAPH_EVICTED, counters.evicted_early),
        (GRAPH_OVERFLOW, counters.series_overflow),
        (GRAPH_DROPPED, counters.aggregates_dropped),
    ):
        if delta:
            counter.labels(label).inc(delta)


ANONYMOUS: Final = object()  # ``exposition``'s view for an unauthenticated scrape while keys are in use


class _TenantView:
    """The families of ``source`` cut down to the samples labelled ``tenant``; families without such
    samples (process-wide series, other tenants') are left out. With ``unlabelled``, samples without a
    tenant label (process-wide) are kept too."""

    def __init__(self, source: CollectorRegistry, tenant: str, unlabelled: bool = False):
        self._source = source
        self._tenant = tenant
        self._unlabelled = unlabelled

    def _keeps(self, labels: dict[str, str]) -> bool:
        found = labels.get(TENANT)
        return found == self._tenant or (found is None and self._unlabelled)

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            samples = [s for s in family.samples if self._keeps(s.labels)]
            if samples:
                own = Metric(family.name, family.documentation, family.type, family.unit)
                own.samples = samples
                yield own


def exposition(tenant: str | object | None = None) -> tuple[bytes, str]:
    """The metrics page and its content type: every series (None: the operator's scrape), only
    ``tenant``'s own (see the module), or, for ``ANONYMOUS`` (no key on an open ``/metrics`` while keys
    are in use), the process-wide series and the default tenant's, never a named tenant's."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    if tenant is not None:
        view = CollectorRegistry(auto_describe=False)
        if tenant is ANONYMOUS:
            view.register(_TenantView(registry, tenant_label(None), unlabelled=True))
        else:
            view.register(_TenantView(registry, str(tenant)))
        registry = view
    return generate_latest(registry), CONTENT_TYPE_LATEST


# Alert notifications (tracesearch.alerting.notify.Dispatcher): one count per call to a receiver, by kind.
NOTIFY_SENT = Counter(
    "tracesearch_alert_notifications_sent_total", "Notification calls a receiver accepted (2xx).", ["notifier"]
)
NOTIFY_SENT_ALERTS = Counter(
    "tracesearch_alert_notifications_alerts_sent_total", "Alerts in the accepted calls.", ["notifier"]
)
NOTIFY_FAILED = Counter(
    "tracesearch_alert_notifications_failed_total",
    "Notification calls given up: refused (4xx) or still failing after every attempt.",
    ["notifier"],
)
NOTIFY_RETRIED = Counter(
    "tracesearch_alert_notifications_retried_total", "Notification attempts retried (5xx, 429, timeouts).", ["notifier"]
)
NOTIFY_DROPPED = Counter(
    "tracesearch_alert_notifications_dropped_total",
    "Notifications not taken by the dispatcher (queue full, closed).",
    ["reason"],
)


class NotificationMetrics:
    """The Dispatcher's counts as Prometheus series (``alerting.notify.dispatcher.NotifyMetrics``)."""

    def sent(self, notifier: str, alerts: int) -> None:
        NOTIFY_SENT.labels(notifier).inc()
        NOTIFY_SENT_ALERTS.labels(notifier).inc(alerts)

    def failed(self, notifier: str, alerts: int) -> None:
        NOTIFY_FAILED.labels(notifier).inc()

    def retried(self, notifier: str) -> None:
        NOTIFY_RETRIED.labels(notifier).inc()

    def dropped(self, reason: str) -> None:
        NOTIFY_DROPPED.labels(reason).inc()
