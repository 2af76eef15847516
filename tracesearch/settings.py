"""One typed settings object, built once from ``TRACESEARCH_*`` environment variables.

Every variable is declared once in ``VARIABLES`` (name, default, meaning); the README's configuration
table is generated from the same list (``python -m tracesearch settings-table``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class Variable(NamedTuple):
    name: str
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("TRACESEARCH_PORT", "4318", "HTTP port of the service (OTLP, Zipkin and the query APIs share it)."),
    Variable("TRACESEARCH_WORKERS", "2", "gunicorn worker processes (read by gunicorn.conf.py)."),
    Variable("TRACESEARCH_THREADS", "8", "Threads per gunicorn worker (read by gunicorn.conf.py)."),
    Variable("TRACESEARCH_ES_URL", "http://127.0.0.1:9200", "Elasticsearch URL; comma-separate several nodes."),
    Variable("TRACESEARCH_ES_USERNAME", "", "Basic-auth user for Elasticsearch (empty: none)."),
    Variable("TRACESEARCH_ES_PASSWORD", "", "Basic-auth password for Elasticsearch."),
    Variable("TRACESEARCH_ES_API_KEY", "", "Elasticsearch API key (base64 `id:key`); exclusive with basic auth."),
    Variable("TRACESEARCH_ES_CA_CERTS", "", "Path to a CA bundle to verify Elasticsearch's TLS certificate."),
    Variable("TRACESEARCH_ES_VERIFY_CERTS", "true", "Verify Elasticsearch's TLS certificate."),
    Variable("TRACESEARCH_ES_TIMEOUT", "30", "Seconds before an Elasticsearch request times out."),
    Variable("TRACESEARCH_INDEX_PREFIX", "tracesearch", "Prefix of every index and template we create."),
    Variable("TRACESEARCH_INDEX_SHARDS", "1", "Primary shards of each daily span index."),
    Variable("TRACESEARCH_INDEX_REPLICAS", "0", "Replicas of each daily span index."),
    Variable(
        "TRACESEARCH_INDEX_REFRESH_INTERVAL", "1s", "Refresh interval of span indices (how soon spans are searchable)."
    ),
    Variable("TRACESEARCH_INSTALL_TEMPLATES", "true", "Install the index templates before each process's first write."),
    Variable(
        "TRACESEARCH_MAX_REQUEST_BYTES", str(20 * 1024 * 1024), "Largest accepted request body, after decompression."
    ),
    Variable(
        "TRACESEARCH_MAX_ATTRIBUTES_PER_SPAN", "1000", "Attributes kept per span; the rest are dropped and counted."
    ),
    Variable("TRACESEARCH_MAX_ATTRIBUTE_VALUE_BYTES", "65536", "Longest attribute value kept; longer ones are cut."),
    Variable("TRACESEARCH_MAX_NESTING_DEPTH", "8", "Deeper array/kvlist values are stored as JSON text."),
    Variable("TRACESEARCH_TRACE_LOOKBACK", "7d", "How far back a trace-by-id lookup without a time range searches."),
    Variable("TRACESEARCH_SEARCH_LOOKBACK", "2d", "Search window when a query gives no start (Jaeger's default)."),
    Variable(
        "TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK", "1d", "Zipkin /api/v2/traces window without `lookback` (Zipkin's 1 day)."
    ),
    Variable(
        "TRACESEARCH_RETENTION",
        "14d",
        "Daily indices (spans, aggregates) whose whole day is older than this are deleted; 0: keep everything.",
    ),
    Variable(
        "TRACESEARCH_RETENTION_SWEEP_INTERVAL", "1h", "How often each service process deletes the expired indices."
    ),
    Variable("TRACESEARCH_MAX_TRACE_DURATION", "1h", "Padding around a search window when fetching whole traces."),
    Variable("TRACESEARCH_BULK_RETRIES", "3", "Retries of a bulk write on 429/5xx/connection errors before giving up."),
    Variable(
        "TRACESEARCH_BULK_CONCURRENCY", "4", "Bulk requests of one write in flight at once (an ingester's batch)."
    ),
    Variable("TRACESEARCH_RETRY_AFTER_SECONDS", "5", "Retry-After sent with 503/429 answers."),
    Variable("TRACESEARCH_PIPELINE", "direct", "`direct`: receivers write to Elasticsearch; `kafka`: through Kafka."),
    Variable("TRACESEARCH_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers (comma-separated)."),
    Variable(
        "TRACESEARCH_KAFKA_TOPIC", "tracesearch-spans", "Topic of span batches (OTLP protobuf, keyed by trace id)."
    ),
    Variable(
        "TRACESEARCH_KAFKA_DLQ_TOPIC", "tracesearch-spans-dlq", "Dead-letter topic of spans Elasticsearch refused."
    ),
    Variable("TRACESEARCH_KAFKA_GROUP", "tracesearch-ingester", "Consumer group of the ingesters."),
    Variable("TRACESEARCH_KAFKA_PARTITIONS", "4", "Partitions of the span topic when we create it."),
    Variable("TRACESEARCH_KAFKA_ACK_TIMEOUT", "10s", "How long a receiver waits for the broker's ack before a 503."),
    Variable(
        "TRACESEARCH_KAFKA_BUFFER_BYTES", str(64 * 1024 * 1024), "Bytes in flight to Kafka per process; over it: 429."
    ),
    Variable(
        "TRACESEARCH_INGEST_BATCH_BYTES", str(5 * 1024 * 1024), "Ingester bulk size: write once this many bytes wait."
    ),
    Variable("TRACESEARCH_INGEST_BATCH_WAIT", "200ms", "Ingester bulk time: write at least this often."),
    Variable("TRACESEARCH_INGESTER_METRICS_PORT", "0", "Port of the ingester's own /metrics (0: none)."),
    Variable("TRACESEARCH_SERVICEGRAPH_ENABLED", "true", "Compute the service map and span metrics as spans arrive."),
    Variable("TRACESEARCH_SERVICEGRAPH_WAIT", "10s", "How long a span waits for its parent or child before a lookup."),
    Variable(
        "TRACESEARCH_SERVICEGRAPH_MAX_PENDING", "100000", "Spans waiting per process at most; older ones go early."
    ),
    Variable("TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL", "5s", "How often each process writes its aggregates."),
    Variable(
        "TRACESEARCH_SERVICEGRAPH_MAX_SERIES", "5000", "Label sets per process per family; more go to `__overflow__`."
    ),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class SettingsError(ValueError):
    """A TRACESEARCH_* variable has a value we cannot use; the message names it."""


def parse_seconds(name: str, text: str) -> float:
    """Parse ``500ms``, ``30s``, ``5m``, ``1h``, ``7d`` or a bare number of seconds."""
    text = text.strip()
    for unit in sorted(_DURATION_UNITS, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * _DURATION_UNITS[unit]
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a duration like 30s, 5m, 1h or 7d") from None


def _int(name: str, text: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={text!r} is not a boolean (true/false)")


@dataclass(frozen=True)
class Settings:
    port: int = 4318
    es_urls: tuple[str, ...] = ("http://127.0.0.1:9200",)
    es_username: str = ""
    es_password: str = ""
    es_api_key: str = ""
    es_ca_certs: str = ""
    es_verify_certs: bool = True
    es_timeout_s: float = 30.0
    index_prefix: str = "tracesearch"
    index_shards: int = 1
    index_replicas: int = 0
    index_refresh_interval: str = "1s"
    install_templates: bool = True
    max_request_bytes: int = 20 * 1024 * 1024
    max_attributes_per_span: int = 1000
    max_attribute_value_bytes: int = 65536
    max_nesting_depth: int = 8
    trace_lookback_s: float = 7 * 86400.0
    search_lookback_s: float = 2 * 86400.0
    zipkin_lookback_s: float = 86400.0
    max_trace_duration_s: float = 3600.0
    retention_s: float = 14 * 86400.0
    retention_sweep_interval_s: float = 3600.0
    bulk_retries: int = 3
    bulk_concurrency: int = 4
    retry_after_s: int = 5
    pipeline: str = "direct"
    kafka_bootstrap: tuple[str, ...] = ("127.0.0.1:9092",)
    kafka_topic: str = "tracesearch-spans"
    kafka_dlq_topic: str = "tracesearch-spans-dlq"
    kafka_group: str = "tracesearch-ingester"
    kafka_partitions: int = 4
    kafka_ack_timeout_s: float = 10.0
    kafka_buffer_bytes: int = 64 * 1024 * 1024
    ingest_batch_bytes: int = 5 * 1024 * 1024
    ingest_batch_wait_s: float = 0.2
    ingester_metrics_port: int = 0
    servicegraph_enabled: bool = True
    servicegraph_wait_s: float = 10.0
    servicegraph_max_pending: int = 100_000
    servicegraph_flush_interval_s: float = 5.0
    servicegraph_max_series: int = 5_000
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(_DEFAULTS)
        source = os.environ if environ is None else environ
        env.update({k: v for k, v in source.items() if k.startswith("TRACESEARCH_")})
        settings = cls(
            port=_int("TRACESEARCH_PORT", env["TRACESEARCH_PORT"], 1),
            es_urls=tuple(u.strip().rstrip("/") for u in env["TRACESEARCH_ES_URL"].split(",") if u.strip()),
            es_username=env["TRACESEARCH_ES_USERNAME"],
            es_password=env["TRACESEARCH_ES_PASSWORD"],
            es_api_key=env["TRACESEARCH_ES_API_KEY"],
            es_ca_certs=env["TRACESEARCH_ES_CA_CERTS"],
            es_verify_certs=_bool("TRACESEARCH_ES_VERIFY_CERTS", env["TRACESEARCH_ES_VERIFY_CERTS"]),
            es_timeout_s=parse_seconds("TRACESEARCH_ES_TIMEOUT", env["TRACESEARCH_ES_TIMEOUT"]),
            index_prefix=env["TRACESEARCH_INDEX_PREFIX"].strip().lower(),
            index_shards=_int("TRACESEARCH_INDEX_SHARDS", env["TRACESEARCH_INDEX_SHARDS"], 1),
            index_replicas=_int("TRACESEARCH_INDEX_REPLICAS", env["TRACESEARCH_INDEX_REPLICAS"]),
            index_refresh_interval=env["TRACESEARCH_INDEX_REFRESH_INTERVAL"],
            install_templates=_bool("TRACESEARCH_INSTALL_TEMPLATES", env["TRACESEARCH_INSTALL_TEMPLATES"]),
            max_request_bytes=_int("TRACESEARCH_MAX_REQUEST_BYTES", env["TRACESEARCH_MAX_REQUEST_BYTES"], 1024),
            max_attributes_per_span=_int(
                "TRACESEARCH_MAX_ATTRIBUTES_PER_SPAN", env["TRACESEARCH_MAX_ATTRIBUTES_PER_SPAN"], 1
            ),
            max_attribute_value_bytes=_int(
                "TRACESEARCH_MAX_ATTRIBUTE_VALUE_BYTES", env["TRACESEARCH_MAX_ATTRIBUTE_VALUE_BYTES"], 16
            ),
            max_nesting_depth=_int("TRACESEARCH_MAX_NESTING_DEPTH", env["TRACESEARCH_MAX_NESTING_DEPTH"], 1),
            trace_lookback_s=parse_seconds("TRACESEARCH_TRACE_LOOKBACK", env["TRACESEARCH_TRACE_LOOKBACK"]),
            search_lookback_s=parse_seconds("TRACESEARCH_SEARCH_LOOKBACK", env["TRACESEARCH_SEARCH_LOOKBACK"]),
            zipkin_lookback_s=parse_seconds(
                "TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK", env["TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK"]
            ),
            max_trace_duration_s=parse_seconds("TRACESEARCH_MAX_TRACE_DURATION", env["TRACESEARCH_MAX_TRACE_DURATION"]),
            retention_s=parse_seconds("TRACESEARCH_RETENTION", env["TRACESEARCH_RETENTION"]),
            retention_sweep_interval_s=parse_seconds(
                "TRACESEARCH_RETENTION_SWEEP_INTERVAL", env["TRACESEARCH_RETENTION_SWEEP_INTERVAL"]
            ),
            bulk_retries=_int("TRACESEARCH_BULK_RETRIES", env["TRACESEARCH_BULK_RETRIES"]),
            bulk_concurrency=_int("TRACESEARCH_BULK_CONCURRENCY", env["TRACESEARCH_BULK_CONCURRENCY"], 1),
            retry_after_s=_int("TRACESEARCH_RETRY_AFTER_SECONDS", env["TRACESEARCH_RETRY_AFTER_SECONDS"], 1),
            pipeline=env["TRACESEARCH_PIPELINE"].strip().lower(),
            kafka_bootstrap=tuple(b.strip() for b in env["TRACESEARCH_KAFKA_BOOTSTRAP"].split(",") if b.strip()),
            kafka_topic=env["TRACESEARCH_KAFKA_TOPIC"],
            kafka_dlq_topic=env["TRACESEARCH_KAFKA_DLQ_TOPIC"],
            kafka_group=env["TRACESEARCH_KAFKA_GROUP"],
            kafka_partitions=_int("TRACESEARCH_KAFKA_PARTITIONS", env["TRACESEARCH_KAFKA_PARTITIONS"], 1),
            kafka_ack_timeout_s=parse_seconds("TRACESEARCH_KAFKA_ACK_TIMEOUT", env["TRACESEARCH_KAFKA_ACK_TIMEOUT"]),
            kafka_buffer_bytes=_int("TRACESEARCH_KAFKA_BUFFER_BYTES", env["TRACESEARCH_KAFKA_BUFFER_BYTES"], 1024),
            ingest_batch_bytes=_int("TRACESEARCH_INGEST_BATCH_BYTES", env["TRACESEARCH_INGEST_BATCH_BYTES"], 1024),
            ingest_batch_wait_s=parse_seconds("TRACESEARCH_INGEST_BATCH_WAIT", env["TRACESEARCH_INGEST_BATCH_WAIT"]),
            ingester_metrics_port=_int("TRACESEARCH_INGESTER_METRICS_PORT", env["TRACESEARCH_INGESTER_METRICS_PORT"]),
            servicegraph_enabled=_bool("TRACESEARCH_SERVICEGRAPH_ENABLED", env["TRACESEARCH_SERVICEGRAPH_ENABLED"]),
            servicegraph_wait_s=parse_seconds("TRACESEARCH_SERVICEGRAPH_WAIT", env["TRACESEARCH_SERVICEGRAPH_WAIT"]),
            servicegraph_max_pending=_int(
                "TRACESEARCH_SERVICEGRAPH_MAX_PENDING", env["TRACESEARCH_SERVICEGRAPH_MAX_PENDING"], 1
            ),
            servicegraph_flush_interval_s=parse_seconds(
                "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL", env["TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL"]
            ),
            servicegraph_max_series=_int(
                "TRACESEARCH_SERVICEGRAPH_MAX_SERIES", env["TRACESEARCH_SERVICEGRAPH_MAX_SERIES"], 1
            ),
            extra={k: v for k, v in env.items() if k not in _DEFAULTS},
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Cross-field checks, run once at start so a bad deployment fails loudly, not at first request."""
        if not self.es_urls:
            raise SettingsError("TRACESEARCH_ES_URL is empty")
        if self.es_api_key and (self.es_username or self.es_password):
            raise SettingsError("set TRACESEARCH_ES_API_KEY or TRACESEARCH_ES_USERNAME/PASSWORD, not both")
        if bool(self.es_username) != bool(self.es_password):
            raise SettingsError("TRACESEARCH_ES_USERNAME and TRACESEARCH_ES_PASSWORD go together")
        if not self.index_prefix or not self.index_prefix.replace("-", "").replace("_", "").isalnum():
            raise SettingsError(f"TRACESEARCH_INDEX_PREFIX={self.index_prefix!r}: use letters, digits, - and _")
        if self.pipeline not in ("direct", "kafka"):
            raise SettingsError(f"TRACESEARCH_PIPELINE={self.pipeline!r}: use direct or kafka")
        if self.pipeline == "kafka" and not self.kafka_bootstrap:
            raise SettingsError("TRACESEARCH_KAFKA_BOOTSTRAP is empty but TRACESEARCH_PIPELINE=kafka")
        if self.servicegraph_flush_interval_s <= 0:
            raise SettingsError("TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL must be more than 0")
        if 0 < self.retention_s < 86400:
            # Indices hold whole days: a shorter retention would delete the day being written.
            raise SettingsError("TRACESEARCH_RETENTION must be 0 (keep everything) or at least 1d")
        if self.retention_sweep_interval_s <= 0:
            raise SettingsError("TRACESEARCH_RETENTION_SWEEP_INTERVAL must be more than 0")
        if self.trace_lookback_s > 400 * 86400:
            raise SettingsError("TRACESEARCH_TRACE_LOOKBACK over 400 days would name too many daily indices")


def settings_table() -> str:
    """The README's configuration table, from the one list of variables."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    rows += [f"| `{v.name}` | `{v.default}` | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)
