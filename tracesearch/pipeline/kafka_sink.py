"""Pipeline mode, receiver side: spans go to a Kafka topic, keyed by trace id (and tenant: see
``kafka_tenants``), acknowledged by all replicas.

The topic carries one canonical encoding, an OTLP ``ExportTraceServiceRequest`` per message, so a
message can be replayed, inspected with any OTLP tool, or consumed by another collector. OTLP
protobuf requests are re-framed per trace from their own bytes (``DecodedBatch.per_trace``); other
formats are encoded from the model.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from tracesearch import prometheus
from tracesearch.codecs.otlp_proto import SpanTraceMessages
from tracesearch.model import PerTraceMessages, Rejection, Span
from tracesearch.pipeline.kafka_tenants import record_headers, record_key
from tracesearch.pipeline.sink import BrokerUnavailable, SinkOverloaded, SubmitResult
from tracesearch.settings import Settings

log = logging.getLogger(__name__)

# Kafka's default message.max.bytes is 1 MB; stay under it with room for the record overhead.
MAX_MESSAGE_BYTES = 900 * 1024


def security_config(settings: Settings) -> dict[str, Any]:
    """The connection settings every Kafka client of ours gets (producer, consumer, admin): bootstrap
    servers, and the TLS and SASL settings when configured, in kafka-python's names."""
    config: dict[str, Any] = {
        "bootstrap_servers": list(settings.kafka_bootstrap),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        config["ssl_check_hostname"] = settings.kafka_ssl_check_hostname
        optional = {
            "ssl_cafile": settings.kafka_ssl_cafile,
            "ssl_certfile": settings.kafka_ssl_certfile,
            "ssl_keyfile": settings.kafka_ssl_keyfile,
            "ssl_password": settings.kafka_ssl_password,
        }
        config.update({name: value for name, value in optional.items() if value})
    if settings.kafka_security_protocol.startswith("SASL_"):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username  # SCRAM reads the same two
        config["sasl_plain_password"] = settings.kafka_sasl_password
    return config


def admin_config(settings: Settings) -> dict[str, Any]:
    return {**security_config(settings), "request_timeout_ms": 10_000}


def ensure_topics(settings: Settings) -> None:
    """Create the span and dead-letter topics if absent (a broker's auto-creation would give one partition)."""
    admin = KafkaAdminClient(**admin_config(settings))
    try:
        for name in (settings.kafka_topic, settings.kafka_dlq_topic):
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, settings.kafka_partitions, 1)])
    finally:
        admin.close()


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config: dict[str, Any] = {
        **security_config(settings),
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 512 * 1024,
        "max_request_size": 8 * 1024 * 1024,
        "request_timeout_ms": int(settings.kafka_ack_timeout_s * 1000),
        "delivery_timeout_ms": int(settings.kafka_ack_timeout_s * 1000) + 5_000,
        "max_block_ms": int(settings.kafka_ack_timeout_s * 1000),
        "retries": 5,
        "retry_backoff_ms": 200,
        # Duplicates are harmless (document ids are deterministic), while kafka-python's idempotent
        # producer was seen stuck without a producer id after a broker restart.
        "enable_idempotence": False,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def _refuse_oversized(
    messages: Iterator[tuple[str, bytes, int]], tenant: str | None = None
) -> tuple[list[tuple[bytes, bytes, int]], list[Rejection]]:
    """(key, value, count) of the messages to send; a lone span bigger than a Kafka message can hold
    is refused with the reason instead (the broker would refuse it on every retry, and answering 503
    would have the client retry it for ever)."""
    kept, rejected = [], []
    for trace_id, value, count in messages:
        if len(value) <= MAX_MESSAGE_BYTES:
            kept.append((record_key(tenant, trace_id), value, count))
        else:
            reason = (
                f"a span of {len(value):,} bytes encoded, over the {MAX_MESSAGE_BYTES:,} bytes a Kafka message "
                "holds; lower its attribute sizes (or TRACESEARCH_MAX_ATTRIBUTE_VALUE_BYTES)"
            )
            rejected.append(Rejection(f"trace {trace_id}", reason))
    return kept, rejected


class Producer:
    """The process's one producer, shared by every tenant's sink, and the bytes in flight through it:
    a bounded amount per process, beyond which requests are told to come back (429)."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._topics_ready = False

    def get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                try:
                    if not self._topics_ready:
                        ensure_topics(self._settings)
                        self._topics_ready = True
                    self._producer = make_producer(self._settings)
                except (KafkaError, OSError) as exc:
                    raise BrokerUnavailable(
                        f"Kafka unreachable at {','.join(self._settings.kafka_bootstrap)}: {exc}"
                    ) from exc
            return self._producer

    def reserve(self, size: int) -> None:
        with self._lock:
            if self._in_flight and self._in_flight + size > self._settings.kafka_buffer_bytes:
                raise SinkOverloaded(f"{self._in_flight} bytes already in flight to Kafka")
            self._in_flight += size

    def release(self, size: int) -> None:
        with self._lock:
            self._in_flight -= size

    def discard(self, producer: KafkaProducer) -> None:
        """After a failure start over with a fresh producer: its requests were answered 503 already,
        so nothing it still holds was promised to anyone."""
        with self._lock:
            if self._producer is producer:
                self._producer = None
        try:
            producer.close(timeout=0)
        except KafkaError as exc:
            log.debug("closing a failed producer: %s", exc)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is buffered (SIGTERM): every request already answered was acked anyway."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(timeout=timeout_s)
            producer.close(timeout=timeout_s)


class KafkaSink:
    """Answers only after the broker acknowledged every message (acks=all). One per tenant, all over
    the process's one ``Producer`` (the default tenant's sink owns it and closes it); each message
    carries its tenant (``kafka_tenants``)."""

    needs_model_spans = False  # what it sends is ``per_trace`` (or, without it, the spans encoded)

    def __init__(self, settings: Settings, tenant: str | None = None, producer: Producer | None = None):
        self._settings = settings
        self._tenant = tenant
        self._owns = producer is None
        self._producer = producer or Producer(settings)
        self._headers = record_headers(tenant)

    def for_tenant(self, tenant: str) -> KafkaSink:
        """``tenant``'s sink over this one's producer."""
        return KafkaSink(self._settings, tenant, self._producer)

    def submit(self, spans: Sequence[Span], per_trace: PerTraceMessages | None = None) -> SubmitResult:
        if not spans and per_trace is None:
            return SubmitResult()
        producer = self._producer.get()
        framed = (per_trace or SpanTraceMessages(spans)).messages(MAX_MESSAGE_BYTES)
        messages, rejected = _refuse_oversized(framed, self._tenant)
        if not messages:
            return SubmitResult(rejected=rejected)
        size = sum(len(value) for _, value, _ in messages)
        self._producer.reserve(size)
        topic, headers = self._settings.kafka_topic, self._headers
        try:
            futures = [producer.send(topic, key=key, value=value, headers=headers) for key, value, _ in messages]
            for future in futures:
                future.get(timeout=self._settings.kafka_ack_timeout_s)
        except KafkaTimeoutError as exc:
            self._producer.discard(producer)
            raise BrokerUnavailable(
                f"Kafka did not acknowledge within {self._settings.kafka_ack_timeout_s}s: {exc}"
            ) from exc
        except KafkaError as exc:
            self._producer.discard(producer)
            raise BrokerUnavailable(f"Kafka refused the spans: {exc}") from exc
        finally:
            self._producer.release(size)
        accepted = sum(count for _, _, count in messages)
        prometheus.SPANS_PRODUCED.inc(accepted)
        return SubmitResult(accepted=accepted, rejected=rejected)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is buffered (SIGTERM), when this sink owns the producer (a tenant's leaves it to
        the default tenant's)."""
        if self._owns:
            self._producer.close(timeout_s)
