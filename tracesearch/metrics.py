"""One vocabulary of ingest counters for every transport, exposed in Prometheus text format.

Under gunicorn every worker counts in its own memory; with ``PROMETHEUS_MULTIPROC_DIR`` set
(gunicorn.conf.py sets it) ``/metrics`` adds up all workers and the local ingesters.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "tracesearch_ingest_requests_total", "Ingest requests by transport and HTTP status.", ["transport", "status"]
)
SPANS_RECEIVED = Counter("tracesearch_spans_received_total", "Spans decoded from requests or messages.", ["transport"])
SPANS_REJECTED = Counter(
    "tracesearch_spans_rejected_total", "Spans refused, with the stage that refused them.", ["transport", "stage"]
)
SPANS_PRODUCED = Counter("tracesearch_spans_produced_total", "Spans acknowledged by Kafka.")
SPANS_INDEXED = Counter("tracesearch_spans_indexed_total", "Spans stored in Elasticsearch (duplicates included).")
SPANS_DUPLICATE = Counter("tracesearch_spans_duplicate_total", "Spans Elasticsearch already had (409).")
BULK_RETRIES = Counter("tracesearch_bulk_retries_total", "Bulk writes retried after 429/5xx/connection errors.")
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


def exposition() -> tuple[bytes, str]:
    """The metrics page and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
