"""One typed settings object, built once from ``TRACESEARCH_*`` environment variables.

Each field of ``Settings`` is declared once, with ``setting()``: the variable's name, its default as
text, the parser that turns text into the field's value (with its bounds) and its meaning. The field's
default, ``Settings.from_env`` and the README's configuration table (``python -m tracesearch
settings-table``) all come from that one declaration.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# (variable name, text) -> value; a value it cannot use raises SettingsError naming the variable.
Parser = Callable[[str, str], T]

PREFIX = "TRACESEARCH_"
# Other tools share the prefix, and their variables sit in the same environments as ours (a shell
# that ran `eval "$(python -m devstack env)"`, a container that also provisions Grafana): they are
# not misspelt settings.
OTHER_TOOLS_PREFIXES: tuple[str, ...] = (
    "TRACESEARCH_DEVSTACK_",  # the dev stack: devstack/settings.py
    "TRACESEARCH_INSTRUMENT_",  # instrumented services: instrument/src/tracesearch/instrument/options.py
    "TRACESEARCH_BENCH_",  # benchmarks: bench/peers/cli.py, bench/es_cost.py, bench/growth.py
)
OTHER_TOOLS_NAMES: frozenset[str] = frozenset(
    {
        "TRACESEARCH_BASE_URL",  # printed by `python -m devstack env`
        "TRACESEARCH_URL",  # Grafana's datasource provisioning and the demo's default --base-url
    }
)

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MAX_PORT = 65535
_METADATA_KEY = "tracesearch.variable"
_URL_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


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


def integer(minimum: int = 0, maximum: int | None = None) -> Parser[int]:
    def parse(name: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise SettingsError(f"{name}={text!r} is not an integer") from None
        if value < minimum:
            raise SettingsError(f"{name}={value} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name}={value} must be at most {maximum}")
        return value

    return parse


def number(minimum: float, maximum: float | None = None, *, exclusive_minimum: bool = False) -> Parser[float]:
    """A decimal number within bounds (``exclusive_minimum``: the minimum itself is refused)."""

    def parse(name: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise SettingsError(f"{name}={text!r} is not a number") from None
        if value != value or value < minimum or (exclusive_minimum and value == minimum):
            raise SettingsError(f"{name}={value} must be {'more than' if exclusive_minimum else 'at least'} {minimum}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name}={value} must be at most {maximum}")
        return value

    return parse


def boolean(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={text!r} is not a boolean (true/false)")


def probability(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise SettingsError(f"{name}={text} must be within [0, 1] (a probability)")
    return value


def as_text(name: str, text: str) -> str:
    return text


def stripped(name: str, text: str) -> str:
    return text.strip()


def uppercase(name: str, text: str) -> str:
    return text.strip().upper()


def lowercase(name: str, text: str) -> str:
    return text.strip().lower()


def comma_separated(name: str, text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def urls(name: str, text: str) -> tuple[str, ...]:
    return tuple(url.rstrip("/") for url in comma_separated(name, text))


# Characters Elasticsearch refuses in an index name (`*` and `,` are the pattern's own, so allowed).
_INDEX_FORBIDDEN = set(' "\\/?<>|#')


def index_pattern(name: str, text: str) -> str:
    """An index name or pattern as Elasticsearch takes it in a search URL (``logs-*``, ``a-*,b``)."""
    pattern = text.strip()
    if not pattern or pattern != pattern.lower() or _INDEX_FORBIDDEN & set(pattern):
        raise SettingsError(f"{name}={text!r}: use a lowercase index name or pattern like logs-*, without spaces")
    return pattern


def field_name(name: str, text: str) -> str:
    """A document field's dotted name (``trace.id``)."""
    field_ = text.strip()
    if not field_ or any(c.isspace() for c in field_) or field_.startswith(".") or field_.endswith("."):
        raise SettingsError(f"{name}={text!r} is not a field name like trace.id")
    return field_


def url_path(name: str, text: str) -> str:
    """A path below the root like ``/zipkin`` or ``/tools/zipkin``, without its trailing slash.

    Only unreserved URL characters: the path is written into an HTML page and routed as it is, so
    nothing in it may need escaping, and ``.``/``..`` segments would leave it.
    """
    path = text.strip().rstrip("/")
    segments = path.split("/")[1:]
    if not path.startswith("/") or not segments:
        raise SettingsError(f"{name}={text!r} must be a path below the root, like /zipkin")
    for segment in segments:
        if segment in ("", ".", "..") or not _URL_SEGMENT.fullmatch(segment):
            raise SettingsError(f"{name}={text!r}: use /-separated segments of letters, digits, '-', '_', '.' or '~'")
    return path


@dataclass(frozen=True)
class Variable(Generic[T]):
    """The declaration of one setting: everything about it that is not its current value."""

    name: str
    default: str
    parse: Parser[T]
    meaning: str
    # A credential: shown as *** in the settings' repr (and so in any log line or traceback that prints them).
    secret: bool = False


def setting(name: str, default: str, parse: Parser[T], meaning: str, *, secret: bool = False) -> T:
    """A ``Settings`` field read from the variable ``name``.

    The field's default is ``default`` parsed, so the default is written once, as the text the README
    shows, and a default the parser refuses fails at import.
    """
    return field(
        default=parse(name, default), metadata={_METADATA_KEY: Variable(name, default, parse, meaning, secret)}
    )


@dataclass(frozen=True)
class Settings:
    port: int = setting(
        "TRACESEARCH_PORT",
        "4318",
        integer(1, _MAX_PORT),
        "HTTP port of the service (OTLP, Zipkin and the query APIs share it).",
    )
    workers: int = setting(
        "TRACESEARCH_WORKERS", "2", integer(1), "gunicorn worker processes (read by gunicorn.conf.py)."
    )
    threads: int = setting(
        "TRACESEARCH_THREADS", "8", integer(1), "Threads per gunicorn worker (read by gunicorn.conf.py)."
    )
    es_urls: tuple[str, ...] = setting(
        "TRACESEARCH_ES_URL", "http://127.0.0.1:9200", urls, "Elasticsearch URL; comma-separate several nodes."
    )
    es_username: str = setting(
        "TRACESEARCH_ES_USERNAME", "", as_text, "Basic-auth user for Elasticsearch (empty: none)."
    )
    es_password: str = setting(
        "TRACESEARCH_ES_PASSWORD",
        "",
        as_text,
        "Basic-auth password for Elasticsearch (secret: never logged).",
        secret=True,
    )
    es_api_key: str = setting(
        "TRACESEARCH_ES_API_KEY",
        "",
        as_text,
        "Elasticsearch API key (base64 `id:key`); exclusive with basic auth (secret: never logged).",
        secret=True,
    )
    es_ca_certs: str = setting(
        "TRACESEARCH_ES_CA_CERTS", "", as_text, "Path to a CA bundle to verify Elasticsearch's TLS certificate."
    )
    es_client_cert: str = setting(
        "TRACESEARCH_ES_CLIENT_CERT",
        "",
        as_text,
        "Path to a PEM client certificate for Elasticsearch (TLS client authentication; empty: none).",
    )
    es_client_key: str = setting(
        "TRACESEARCH_ES_CLIENT_KEY", "", as_text, "Path to the PEM private key of `TRACESEARCH_ES_CLIENT_CERT`."
    )
    es_verify_certs: bool = setting(
        "TRACESEARCH_ES_VERIFY_CERTS", "true", boolean, "Verify Elasticsearch's TLS certificate."
    )
    es_timeout_s: float = setting(
        "TRACESEARCH_ES_TIMEOUT", "30", parse_seconds, "Seconds before an Elasticsearch request times out."
    )
    index_prefix: str = setting(
        "TRACESEARCH_INDEX_PREFIX", "tracesearch", lowercase, "Prefix of every index and template we create."
    )
    index_shards: int = setting("TRACESEARCH_INDEX_SHARDS", "1", integer(1), "Primary shards of each daily span index.")
    index_replicas: int = setting("TRACESEARCH_INDEX_REPLICAS", "0", integer(0), "Replicas of each daily span index.")
    index_refresh_interval: str = setting(
        "TRACESEARCH_INDEX_REFRESH_INTERVAL",
        "",
        stripped,
        "Refresh interval of new daily indices (how soon spans are searchable); empty: Elasticsearch's "
        "default, 1s while the index is searched, none while nothing searched it for 30 s (search-idle; the "
        "next search refreshes first). `1s` was the default before, and keeps refreshing an unsearched index.",
    )
    index_sort_by_trace: bool = setting(
        "TRACESEARCH_INDEX_SORT_BY_TRACE",
        "false",
        boolean,
        "Sort new daily span indices by trace id and fetch found traces with one search each: a trace's spans "
        "lie together, so the fetch decompresses a few stored-field blocks per trace instead of one per span "
        "(2-3x faster), for ~15-20% more Elasticsearch CPU per indexed span. `false`: arrival order.",
    )
    install_templates: bool = setting(
        "TRACESEARCH_INSTALL_TEMPLATES",
        "true",
        boolean,
        "Install the index templates before each process's first write.",
    )
    max_request_bytes: int = setting(
        "TRACESEARCH_MAX_REQUEST_BYTES",
        str(20 * 1024 * 1024),
        integer(1024),
        "Largest accepted request body, after decompression.",
    )
    max_spans_per_request: int = setting(
        "TRACESEARCH_MAX_SPANS_PER_REQUEST",
        "0",
        integer(0),
        "Most spans one ingest request may hold; more: 413 (0: no limit but the bytes). Per tenant (overrides).",
    )
    ingest_spans_per_second: float = setting(
        "TRACESEARCH_INGEST_SPANS_PER_SECOND",
        "0",
        number(0),
        "Spans per second a tenant may send to one worker process (a token bucket; past it 429 with Retry-After); "
        "0: no limit. Each worker has its own bucket: one instance admits `TRACESEARCH_WORKERS` times this.",
    )
    ingest_burst_spans: int = setting(
        "TRACESEARCH_INGEST_BURST_SPANS",
        "0",
        integer(0),
        "The bucket's size: spans a tenant may send at once after a quiet while, and the largest request "
        "ever admitted under a rate (bigger: 413); 0: one second of `TRACESEARCH_INGEST_SPANS_PER_SECOND`.",
    )
    max_attributes_per_span: int = setting(
        "TRACESEARCH_MAX_ATTRIBUTES_PER_SPAN",
        "1000",
        integer(1),
        "Attributes kept per span; the rest are dropped and counted.",
    )
    max_attribute_value_bytes: int = setting(
        "TRACESEARCH_MAX_ATTRIBUTE_VALUE_BYTES",
        "65536",
        integer(16),
        "Longest attribute value kept; longer ones are cut.",
    )
    max_nesting_depth: int = setting(
        "TRACESEARCH_MAX_NESTING_DEPTH", "8", integer(1), "Deeper array/kvlist values are stored as JSON text."
    )
    trace_lookback_s: float = setting(
        "TRACESEARCH_TRACE_LOOKBACK",
        "7d",
        parse_seconds,
        "How far back a trace-by-id lookup without a time range searches.",
    )
    search_lookback_s: float = setting(
        "TRACESEARCH_SEARCH_LOOKBACK",
        "2d",
        parse_seconds,
        "Search window when a query gives no start (Jaeger's default).",
    )
    zipkin_lookback_s: float = setting(
        "TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK",
        "1d",
        parse_seconds,
        "Zipkin /api/v2/traces window without `lookback` (Zipkin's 1 day).",
    )
    zipkin_autocomplete_keys: tuple[str, ...] = setting(
        "TRACESEARCH_ZIPKIN_AUTOCOMPLETE_KEYS",
        "",
        comma_separated,
        "Tag keys Zipkin's UI offers values for (Zipkin's `AUTOCOMPLETE_KEYS`, comma-separated); "
        "empty: the span and resource attribute keys of `TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK`, from the tag index.",
    )
    max_trace_duration_s: float = setting(
        "TRACESEARCH_MAX_TRACE_DURATION",
        "1h",
        parse_seconds,
        "Padding around a search window when fetching whole traces.",
    )
    logs_index: str = setting(
        "TRACESEARCH_LOGS_INDEX",
        "logs-*",
        index_pattern,
        "Elasticsearch index pattern of the logs `/api/v1/traces/{id}/logs` reads (same cluster as the spans).",
    )
    logs_trace_id_field: str = setting(
        "TRACESEARCH_LOGS_TRACE_ID_FIELD",
        "trace.id",
        field_name,
        "Field of a log line holding its trace id (ECS `trace.id`; keyword, or text with a `.keyword` subfield).",
    )
    logs_time_margin_s: float = setting(
        "TRACESEARCH_LOGS_TIME_MARGIN",
        "5m",
        parse_seconds,
        "Logs of a trace are searched from its first span's start minus this to its last span's end plus this.",
    )
    retention_s: float = setting(
        "TRACESEARCH_RETENTION",
        "14d",
        parse_seconds,
        "Daily indices (spans, aggregates) whose whole day is older than this are deleted; 0: keep everything.",
    )
    retention_sweep_interval_s: float = setting(
        "TRACESEARCH_RETENTION_SWEEP_INTERVAL",
        "1h",
        parse_seconds,
        "How often each service process deletes the expired indices.",
    )
    bulk_retries: int = setting(
        "TRACESEARCH_BULK_RETRIES",
        "3",
        integer(0),
        "Retries of a bulk write on 429/5xx/connection errors before giving up.",
    )
    bulk_concurrency: int = setting(
        "TRACESEARCH_BULK_CONCURRENCY",
        "4",
        integer(1),
        "Bulk requests of one write in flight at once (an ingester's batch).",
    )
    native: str = setting(
        "TRACESEARCH_NATIVE",
        "auto",
        lowercase,
        "The compiled core (`native/`, built by `make venv` where cargo is found) decodes OTLP protobuf and "
        "builds the Elasticsearch bulk bodies: `auto` when it is installed, else the pure-Python path; `on`: "
        "fail to start without it; `off`: always the pure-Python path (same results, more CPU).",
    )
    query_timeout_s: float = setting(
        "TRACESEARCH_QUERY_TIMEOUT",
        "10s",
        parse_seconds,
        "Time budget of one query (Elasticsearch's search `timeout`, and the TraceQL evaluation's deadline); "
        "past it the answer is partial and says so.",
    )
    max_concurrent_queries: int = setting(
        "TRACESEARCH_MAX_CONCURRENT_QUERIES",
        "4",
        integer(1),
        "Searches and metrics queries running at once per tenant and process; more wait up to 1s, then 429 with "
        "Retry-After.",
    )
    query_max_range_s: float = setting(
        "TRACESEARCH_QUERY_MAX_RANGE",
        "30d",
        parse_seconds,
        "Longest time range of a search or metrics query; longer: 400 naming the parameter.",
    )
    query_max_traces: int = setting(
        "TRACESEARCH_QUERY_MAX_TRACES",
        "1500",
        integer(1, 10_000),
        "Traces per search at most; a larger `limit` is cut to it.",
    )
    query_max_spans_per_trace: int = setting(
        "TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE",
        "50000",
        integer(1),
        "Spans of one trace a read API answers at most: the earliest by start time; a trace with more is "
        "cut and the answer says it is partial.",
    )
    retry_after_s: int = setting(
        "TRACESEARCH_RETRY_AFTER_SECONDS", "5", integer(1), "Retry-After sent with 503/429 answers."
    )
    pipeline: str = setting(
        "TRACESEARCH_PIPELINE",
        "direct",
        lowercase,
        "`direct`: receivers write to Elasticsearch; `kafka`: through Kafka.",
    )
    kafka_bootstrap: tuple[str, ...] = setting(
        "TRACESEARCH_KAFKA_BOOTSTRAP",
        "127.0.0.1:9092",
        comma_separated,
        "Kafka bootstrap servers (comma-separated).",
    )
    kafka_security_protocol: str = setting(
        "TRACESEARCH_KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        uppercase,
        "Kafka's `security.protocol`: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (producer, consumer and admin).",
    )
    kafka_sasl_mechanism: str = setting(
        "TRACESEARCH_KAFKA_SASL_MECHANISM",
        "",
        uppercase,
        "SASL mechanism with a SASL_* protocol: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    kafka_sasl_username: str = setting(
        "TRACESEARCH_KAFKA_SASL_USERNAME", "", as_text, "SASL user name (with a SASL_* protocol)."
    )
    kafka_sasl_password: str = setting(
        "TRACESEARCH_KAFKA_SASL_PASSWORD", "", as_text, "SASL password (secret: never logged).", secret=True
    )
    kafka_ssl_cafile: str = setting(
        "TRACESEARCH_KAFKA_SSL_CAFILE",
        "",
        as_text,
        "PEM CA bundle to verify the brokers' certificates (SSL, SASL_SSL; empty: the system's).",
    )
    kafka_ssl_certfile: str = setting(
        "TRACESEARCH_KAFKA_SSL_CERTFILE", "", as_text, "PEM client certificate for TLS client authentication."
    )
    kafka_ssl_keyfile: str = setting(
        "TRACESEARCH_KAFKA_SSL_KEYFILE", "", as_text, "PEM private key of `TRACESEARCH_KAFKA_SSL_CERTFILE`."
    )
    kafka_ssl_password: str = setting(
        "TRACESEARCH_KAFKA_SSL_PASSWORD",
        "",
        as_text,
        "Password of an encrypted `TRACESEARCH_KAFKA_SSL_KEYFILE` (secret: never logged).",
        secret=True,
    )
    kafka_ssl_check_hostname: bool = setting(
        "TRACESEARCH_KAFKA_SSL_CHECK_HOSTNAME",
        "true",
        boolean,
        "Check that a broker's certificate names the host connected to.",
    )
    kafka_topic: str = setting(
        "TRACESEARCH_KAFKA_TOPIC",
        "tracesearch-spans",
        as_text,
        "Topic of span batches (OTLP protobuf, keyed by trace id; a tenant's by `<tenant>/<trace id>`, "
        "with a `tenant` header).",
    )
    kafka_dlq_topic: str = setting(
        "TRACESEARCH_KAFKA_DLQ_TOPIC",
        "tracesearch-spans-dlq",
        as_text,
        "Dead-letter topic of spans Elasticsearch refused, and of records that cannot be stored "
        "(undecodable, or an invalid `tenant` header).",
    )
    kafka_group: str = setting(
        "TRACESEARCH_KAFKA_GROUP", "tracesearch-ingester", as_text, "Consumer group of the ingesters."
    )
    kafka_partitions: int = setting(
        "TRACESEARCH_KAFKA_PARTITIONS", "4", integer(1), "Partitions of the span topic when we create it."
    )
    kafka_ack_timeout_s: float = setting(
        "TRACESEARCH_KAFKA_ACK_TIMEOUT",
        "10s",
        parse_seconds,
        "How long a receiver waits for the broker's ack before a 503.",
    )
    kafka_buffer_bytes: int = setting(
        "TRACESEARCH_KAFKA_BUFFER_BYTES",
        str(64 * 1024 * 1024),
        integer(1024),
        "Bytes in flight to Kafka per process; over it: 429.",
    )
    ingest_batch_bytes: int = setting(
        "TRACESEARCH_INGEST_BATCH_BYTES",
        str(5 * 1024 * 1024),
        integer(1024),
        "Ingester bulk size: write once this many bytes wait.",
    )
    ingest_batch_wait_s: float = setting(
        "TRACESEARCH_INGEST_BATCH_WAIT", "200ms", parse_seconds, "Ingester bulk time: write at least this often."
    )
    ingester_metrics_port: int = setting(
        "TRACESEARCH_INGESTER_METRICS_PORT",
        "0",
        integer(0, _MAX_PORT),
        "Port of the ingester's own /metrics (0: none).",
    )
    servicegraph_enabled: bool = setting(
        "TRACESEARCH_SERVICEGRAPH_ENABLED",
        "true",
        boolean,
        "Compute the service map and span metrics as spans arrive.",
    )
    servicegraph_wait_s: float = setting(
        "TRACESEARCH_SERVICEGRAPH_WAIT",
        "10s",
        parse_seconds,
        "How long a span waits for its parent or child before a lookup.",
    )
    servicegraph_max_pending: int = setting(
        "TRACESEARCH_SERVICEGRAPH_MAX_PENDING",
        "100000",
        integer(1),
        "Spans waiting per process at most; older ones go early.",
    )
    servicegraph_flush_interval_s: float = setting(
        "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL",
        "5s",
        parse_seconds,
        "How often each process writes its aggregates.",
    )
    servicegraph_max_series: int = setting(
        "TRACESEARCH_SERVICEGRAPH_MAX_SERIES",
        "5000",
        integer(1),
        "Label sets per process per family; more go to `__overflow__`.",
    )
    sampling_adaptive: bool = setting(
        "TRACESEARCH_SAMPLING_ADAPTIVE",
        "false",
        boolean,
        "Adaptive head sampling: per service and operation, probabilities steered to a target of traces/s.",
    )
    sampling_adaptive_interval_s: float = setting(
        "TRACESEARCH_SAMPLING_ADAPTIVE_INTERVAL",
        "1m",
        parse_seconds,
        "How often adaptive probabilities are computed (by one process) and re-read (by every process).",
    )
    sampling_target_tps: float = setting(
        "TRACESEARCH_SAMPLING_TARGET_TPS",
        "1",
        number(0, exclusive_minimum=True),
        "Adaptive sampling: traces per second each root operation should yield.",
    )
    sampling_min_probability: float = setting(
        "TRACESEARCH_SAMPLING_MIN_PROBABILITY",
        "0.00001",
        number(0, 1, exclusive_minimum=True),
        "Adaptive sampling never goes below this probability.",
    )
    sampling_adaptive_tolerance: float = setting(
        "TRACESEARCH_SAMPLING_ADAPTIVE_TOLERANCE",
        "0.3",
        number(0, 1),
        "An operation within this share of the target keeps its probability (no chasing noise).",
    )
    sampling_adaptive_initial_probability: float = setting(
        "TRACESEARCH_SAMPLING_ADAPTIVE_INITIAL_PROBABILITY",
        "1",
        number(0, 1, exclusive_minimum=True),
        "Probability of an operation not computed yet (served as the default); match your static default.",
    )
    sampling_adaptive_delay_s: float = setting(
        "TRACESEARCH_SAMPLING_ADAPTIVE_DELAY",
        "30s",
        parse_seconds,
        "Span-metrics minutes younger than this are not read yet (late spans, flushes).",
    )
    sampling_client_refresh_s: float = setting(
        "TRACESEARCH_SAMPLING_CLIENT_REFRESH",
        "1m",
        parse_seconds,
        "How often clients poll their strategy (jaegerremote: 1m); a change is judged only after it.",
    )
    tail_sampling_policy_file: str = setting(
        "TRACESEARCH_TAIL_SAMPLING_POLICY_FILE",
        "",
        as_text,
        "Tail sampling in the Kafka ingesters: the JSON policy file (empty: off, every span stored).",
    )
    tail_sampling_wait_s: float = setting(
        "TRACESEARCH_TAIL_SAMPLING_WAIT",
        "10s",
        parse_seconds,
        "Tail sampling: a trace is decided once no span of it came for this long.",
    )
    tail_sampling_max_spans: int = setting(
        "TRACESEARCH_TAIL_SAMPLING_MAX_SPANS",
        "200000",
        integer(1),
        "Tail sampling: spans waiting per ingester at most; over it the oldest traces are decided early.",
    )
    tail_sampling_max_bytes: int = setting(
        "TRACESEARCH_TAIL_SAMPLING_MAX_BYTES",
        str(64 * 1024 * 1024),
        integer(1024),
        "Tail sampling: encoded bytes of the waiting spans per ingester at most (same rule).",
    )
    tail_sampling_decision_cache: int = setting(
        "TRACESEARCH_TAIL_SAMPLING_DECISION_CACHE",
        "100000",
        integer(1),
        "Tail sampling: decisions remembered per ingester for spans arriving after their trace's.",
    )
    ui: bool = setting(
        "TRACESEARCH_UI",
        "false",
        boolean,
        "Serve Zipkin's UI (Lens) from `TRACESEARCH_UI_DIR` (with keys on, it needs a `read` key, as basic auth).",
    )
    ui_dir: str = setting(
        "TRACESEARCH_UI_DIR",
        "",
        as_text,
        "Folder of the UI's files, put there once by `python -m tracesearch fetch-ui`.",
    )
    ui_base_path: str = setting(
        "TRACESEARCH_UI_BASE_PATH",
        "/zipkin",
        url_path,
        "Path the UI is served at (its API at `<path>/api/v2`); Lens's own is /zipkin.",
    )
    sampling_strategies_file: str = setting(
        "TRACESEARCH_SAMPLING_STRATEGIES_FILE",
        "",
        as_text,
        "Jaeger `strategies.json` served to remote samplers and written by the admin API (empty: none, "
        "every service gets `TRACESEARCH_SAMPLING_DEFAULT_PROBABILITY`).",
    )
    sampling_reload_interval_s: float = setting(
        "TRACESEARCH_SAMPLING_RELOAD_INTERVAL",
        "5s",
        parse_seconds,
        "How often each process looks whether the strategies file changed (at most; on a request).",
    )
    sampling_default_probability: float = setting(
        "TRACESEARCH_SAMPLING_DEFAULT_PROBABILITY",
        "1.0",
        probability,
        "Probability served where the file names none (Jaeger's `--sampling.default-sampling-probability`).",
    )
    alerts_rules_file: str = setting(
        "TRACESEARCH_ALERTS_RULES_FILE",
        "",
        as_text,
        "Alert rules (YAML, `rules: [...]`), reloaded on change and written by `PUT /api/v1/alerts/rules` "
        "(empty: no rules).",
    )
    alerts_reload_interval_s: float = setting(
        "TRACESEARCH_ALERTS_RELOAD_INTERVAL",
        "5s",
        parse_seconds,
        "How often each process looks whether the alert rules file changed (at most).",
    )
    alerts_webhook_urls: tuple[str, ...] = setting(
        "TRACESEARCH_ALERTS_WEBHOOK_URLS",
        "",
        urls,
        "Generic webhooks that get alert notifications (JSON, shaped like Alertmanager's); comma-separate several.",
    )
    alerts_slack_urls: tuple[str, ...] = setting(
        "TRACESEARCH_ALERTS_SLACK_URLS",
        "",
        urls,
        "Slack-compatible incoming-webhook URLs for alert notifications (secrets: never logged); comma-separated.",
    )
    alerts_alertmanager_urls: tuple[str, ...] = setting(
        "TRACESEARCH_ALERTS_ALERTMANAGER_URLS",
        "",
        urls,
        "Prometheus Alertmanager base URLs (alerts go to `/api/v2/alerts`); comma-separate the cluster's members.",
    )
    alerts_notify_timeout_s: float = setting(
        "TRACESEARCH_ALERTS_NOTIFY_TIMEOUT",
        "10s",
        parse_seconds,
        "Timeout of one notification call (connect and read).",
    )
    alerts_notify_attempts: int = setting(
        "TRACESEARCH_ALERTS_NOTIFY_ATTEMPTS",
        "5",
        integer(1, 20),
        "Tries of one notification call on 5xx, 429, timeouts and connection errors (backoff 1s, 2s, 4s, ... ±50%).",
    )
    alerts_repeat_interval_s: float = setting(
        "TRACESEARCH_ALERTS_REPEAT_INTERVAL",
        "4h",
        parse_seconds,
        "A still-firing alert is notified again (webhook, Slack) this long after the last time, as in Alertmanager.",
    )
    alerts_group_wait_s: float = setting(
        "TRACESEARCH_ALERTS_GROUP_WAIT",
        "10s",
        parse_seconds,
        "Notifications of one group wait this long for each other, then go in one call per receiver.",
    )
    alerts_group_by: tuple[str, ...] = setting(
        "TRACESEARCH_ALERTS_GROUP_BY",
        "alertname",
        comma_separated,
        "Labels whose values make a notification group (empty: one group for all).",
    )
    alerts_alertmanager_resend_s: float = setting(
        "TRACESEARCH_ALERTS_ALERTMANAGER_RESEND",
        "1m",
        parse_seconds,
        "Still-firing alerts are re-sent to Alertmanager this often (keep it under its `resolve_timeout`).",
    )
    alerts_trace_url: str = setting(
        "TRACESEARCH_ALERTS_TRACE_URL",
        "",
        as_text,
        "Link to one example trace in notifications, `{trace_id}` replaced (e.g. your Jaeger UI); empty: Grafana "
        "Explore when the search link is Grafana's, else the service's `/api/traces/{id}`.",
    )
    alerts_enabled: bool = setting(
        "TRACESEARCH_ALERTS_ENABLED",
        "false",
        boolean,
        "Evaluate alert rules in the service (one process at a time, through a lease in Elasticsearch).",
    )
    alerts_interval_s: float = setting(
        "TRACESEARCH_ALERTS_INTERVAL",
        "1m",
        parse_seconds,
        "How often the rules are evaluated; the evaluator's lease lasts three intervals.",
    )
    alerts_external_url: str = setting(
        "TRACESEARCH_ALERTS_EXTERNAL_URL",
        "",
        as_text,
        "This service's URL as people reach it, for notifications' search links without Grafana "
        "(empty: `http://127.0.0.1:$TRACESEARCH_PORT`).",
    )
    grafana_url: str = setting(
        "TRACESEARCH_GRAFANA_URL",
        "",
        as_text,
        "Grafana's URL: notifications link to its Explore with the Tempo data source (empty: the native API).",
    )
    grafana_tempo_uid: str = setting(
        "TRACESEARCH_GRAFANA_TEMPO_UID",
        "tracesearch-tempo",
        as_text,
        "The uid of Grafana's Tempo data source for tracesearch (the provisioned one's by default).",
    )
    auth_keys_file: str = setting(
        "TRACESEARCH_AUTH_KEYS_FILE",
        "",
        as_text,
        "API keys (YAML, `keys: [...]`, hashed; `tracesearch auth add-key` writes it): set, every API needs a key "
        "with its scope; empty: no authentication.",
    )
    auth_reload_interval_s: float = setting(
        "TRACESEARCH_AUTH_RELOAD_INTERVAL",
        "5s",
        parse_seconds,
        "How often each process looks whether the keys file changed (at most; on a request): a revoked key "
        "stops working within it.",
    )
    auth_protect_metrics: bool = setting(
        "TRACESEARCH_AUTH_PROTECT_METRICS",
        "false",
        boolean,
        "With keys: `/metrics`, `/health` and `/ready` need a `read` key too (false: they stay open).",
    )
    tenant_header: bool = setting(
        "TRACESEARCH_TENANT_HEADER",
        "false",
        boolean,
        "Read the tenant from `X-Scope-OrgID` when the request's key is not bound to one (false: such requests "
        "are the default tenant's). A key bound to a tenant always is that tenant's.",
    )
    max_tenants: int = setting(
        "TRACESEARCH_MAX_TENANTS",
        "1000",
        integer(1),
        "Tenants one process serves; a request naming one more is refused (403).",
    )
    tenants_file: str = setting(
        "TRACESEARCH_TENANTS_FILE",
        "",
        as_text,
        "Per-tenant overrides (YAML, `tenants: {name: {TRACESEARCH_...: value}}`, see docs/tenants.md), "
        "read at start; empty: every tenant has these settings.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        check_names(source)
        # Any: each value has its own field's type, which one dict cannot say.
        values: dict[str, Any] = {
            name: variable.parse(variable.name, source.get(variable.name, variable.default))
            for name, variable in VARIABLES_BY_FIELD.items()
        }
        settings = cls(**values)
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
        if self.native not in ("auto", "on", "off"):
            raise SettingsError(f"TRACESEARCH_NATIVE={self.native!r}: use auto, on or off")
        if self.pipeline not in ("direct", "kafka"):
            raise SettingsError(f"TRACESEARCH_PIPELINE={self.pipeline!r}: use direct or kafka")
        if self.pipeline == "kafka" and not self.kafka_bootstrap:
            raise SettingsError("TRACESEARCH_KAFKA_BOOTSTRAP is empty but TRACESEARCH_PIPELINE=kafka")
        if self.pipeline == "direct" and self.tail_sampling_policy_file:
            # Each gunicorn worker sees only the spans of its own requests, never a whole trace.
            raise SettingsError(
                "TRACESEARCH_TAIL_SAMPLING_POLICY_FILE is set but TRACESEARCH_PIPELINE=direct: tail sampling needs "
                "whole traces, which only the Kafka ingesters see (Kafka is keyed by trace id); "
                "use TRACESEARCH_PIPELINE=kafka or unset the policy file"
            )
        if self.tail_sampling_wait_s <= 0:
            raise SettingsError("TRACESEARCH_TAIL_SAMPLING_WAIT must be more than 0")
        if self.servicegraph_flush_interval_s <= 0:
            raise SettingsError("TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL must be more than 0")
        if 0 < self.retention_s < 86400:
            # Indices hold whole days: a shorter retention would delete the day being written.
            raise SettingsError("TRACESEARCH_RETENTION must be 0 (keep everything) or at least 1d")
        if self.retention_sweep_interval_s <= 0:
            raise SettingsError("TRACESEARCH_RETENTION_SWEEP_INTERVAL must be more than 0")
        if self.sampling_adaptive_interval_s < 1:
            raise SettingsError("TRACESEARCH_SAMPLING_ADAPTIVE_INTERVAL must be at least 1s")
        if self.alerts_interval_s < 1:
            raise SettingsError("TRACESEARCH_ALERTS_INTERVAL must be at least 1s")
        if self.query_timeout_s <= 0:
            raise SettingsError("TRACESEARCH_QUERY_TIMEOUT must be more than 0")
        if self.query_max_range_s < 60:
            raise SettingsError("TRACESEARCH_QUERY_MAX_RANGE must be at least 1m")
        if self.trace_lookback_s > 400 * 86400:
            raise SettingsError("TRACESEARCH_TRACE_LOOKBACK over 400 days would name too many daily indices")
        if self.sampling_reload_interval_s <= 0:
            raise SettingsError("TRACESEARCH_SAMPLING_RELOAD_INTERVAL must be more than 0")
        if self.alerts_reload_interval_s <= 0:
            raise SettingsError("TRACESEARCH_ALERTS_RELOAD_INTERVAL must be more than 0")
        if self.auth_reload_interval_s <= 0:
            raise SettingsError("TRACESEARCH_AUTH_RELOAD_INTERVAL must be more than 0")
        if bool(self.es_client_cert) != bool(self.es_client_key):
            raise SettingsError("TRACESEARCH_ES_CLIENT_CERT and TRACESEARCH_ES_CLIENT_KEY go together")
        self._check_kafka_security()
        self._check_alert_notifications()
        if self.ui:
            # Here rather than when the app is built: gunicorn's master stops in one line, before any worker.
            problem = ui_dir_problem(self.ui_dir)
            if problem:
                raise SettingsError(problem)

    def _check_kafka_security(self) -> None:
        protocol, mechanism = self.kafka_security_protocol, self.kafka_sasl_mechanism
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise SettingsError(
                f"TRACESEARCH_KAFKA_SECURITY_PROTOCOL={protocol!r}: use {', '.join(KAFKA_SECURITY_PROTOCOLS)}"
            )
        if mechanism and mechanism not in KAFKA_SASL_MECHANISMS:
            raise SettingsError(
                f"TRACESEARCH_KAFKA_SASL_MECHANISM={mechanism!r}: use {', '.join(KAFKA_SASL_MECHANISMS)}"
            )
        sasl = {
            "TRACESEARCH_KAFKA_SASL_MECHANISM": mechanism,
            "TRACESEARCH_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "TRACESEARCH_KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        if protocol.startswith("SASL_"):
            missing = [name for name, value in sasl.items() if not value]
            if missing:
                raise SettingsError(f"TRACESEARCH_KAFKA_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)}")
        else:
            for name, value in sasl.items():
                if value:
                    raise SettingsError(
                        f"{name} is set but TRACESEARCH_KAFKA_SECURITY_PROTOCOL={protocol}: "
                        "use SASL_PLAINTEXT or SASL_SSL"
                    )
        if protocol not in ("SSL", "SASL_SSL"):
            tls = {
                "TRACESEARCH_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
                "TRACESEARCH_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
                "TRACESEARCH_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
                "TRACESEARCH_KAFKA_SSL_PASSWORD": self.kafka_ssl_password,
            }
            for name, value in tls.items():
                if value:
                    raise SettingsError(
                        f"{name} is set but TRACESEARCH_KAFKA_SECURITY_PROTOCOL={protocol}: use SSL or SASL_SSL"
                    )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise SettingsError("TRACESEARCH_KAFKA_SSL_KEYFILE needs TRACESEARCH_KAFKA_SSL_CERTFILE")

    def __repr__(self) -> str:
        """Every field, credentials as ``***``: settings end up in log lines and tracebacks."""
        shown = []
        for name, variable in VARIABLES_BY_FIELD.items():
            value = getattr(self, name)
            shown.append(f"{name}={'***' if variable.secret and value else repr(value)}")
        return f"Settings({', '.join(shown)})"

    def _check_alert_notifications(self) -> None:
        named = {
            "TRACESEARCH_ALERTS_WEBHOOK_URLS": self.alerts_webhook_urls,
            "TRACESEARCH_ALERTS_SLACK_URLS": self.alerts_slack_urls,
            "TRACESEARCH_ALERTS_ALERTMANAGER_URLS": self.alerts_alertmanager_urls,
        }
        for name, values in named.items():
            for number_, url in enumerate(values, 1):
                if not url.startswith(("http://", "https://")):
                    # Index, not the URL: a Slack URL is a secret and this message reaches logs.
                    raise SettingsError(f"{name}: URL number {number_} is not an http:// or https:// URL")
        if self.alerts_notify_timeout_s <= 0:
            raise SettingsError("TRACESEARCH_ALERTS_NOTIFY_TIMEOUT must be more than 0")
        if self.alerts_repeat_interval_s <= 0:
            raise SettingsError("TRACESEARCH_ALERTS_REPEAT_INTERVAL must be more than 0")
        if self.alerts_alertmanager_resend_s <= 0:
            raise SettingsError("TRACESEARCH_ALERTS_ALERTMANAGER_RESEND must be more than 0")
        if self.alerts_trace_url and "{trace_id}" not in self.alerts_trace_url:
            raise SettingsError("TRACESEARCH_ALERTS_TRACE_URL must contain {trace_id}")


def ui_dir_problem(ui_dir: str) -> str | None:
    """Why ``TRACESEARCH_UI_DIR`` cannot serve the UI (no index.html), or None."""
    fetch = f"`python -m tracesearch fetch-ui --into {ui_dir.strip() or 'DIR'}`"
    if not ui_dir.strip():
        return f"TRACESEARCH_UI is on but TRACESEARCH_UI_DIR is empty: put Zipkin's UI in a folder with {fetch} once"
    if not (Path(ui_dir).expanduser() / "index.html").is_file():
        return (
            f"TRACESEARCH_UI is on but TRACESEARCH_UI_DIR={ui_dir} has no index.html: put Zipkin's UI there "
            f"with {fetch} once, or set TRACESEARCH_UI=false"
        )
    return None


VARIABLES_BY_FIELD: Mapping[str, Variable[Any]] = {f.name: f.metadata[_METADATA_KEY] for f in fields(Settings)}
VARIABLES: tuple[Variable[Any], ...] = tuple(VARIABLES_BY_FIELD.values())
_NAMES = frozenset(variable.name for variable in VARIABLES)


def check_names(environ: Mapping[str, str]) -> None:
    """Refuse a TRACESEARCH_* variable that is neither a setting nor another tool's.

    A misspelt setting would otherwise be ignored and its default used, silently.
    """
    unknown = sorted(name for name in environ if name.startswith(PREFIX) and not _is_known(name))
    if unknown:
        raise SettingsError("; ".join(f"unknown setting {name}: did you mean {_closest(name)}?" for name in unknown))


def _is_known(name: str) -> bool:
    return name in _NAMES or name in OTHER_TOOLS_NAMES or name.startswith(OTHER_TOOLS_PREFIXES)


def _closest(name: str) -> str:
    # cutoff 0: every candidate shares the prefix, so the best one is always worth naming.
    return difflib.get_close_matches(name, sorted(_NAMES | OTHER_TOOLS_NAMES), n=1, cutoff=0.0)[0]


def settings_table() -> str:
    """The README's configuration table, from the declarations of the fields."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    rows += [f"| `{v.name}` | `{v.default}` | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)
