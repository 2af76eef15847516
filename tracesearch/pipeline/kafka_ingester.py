"""Pipeline mode, storage side: consume span messages, bulk-write them, commit only what is stored.

At-least-once with idempotent writes gives exactly-once storage: offsets are committed only after
Elasticsearch acknowledged every span of the batch (201, or 409 = already stored), a replay after a
crash or rebalance writes the same document ids again, and a span Elasticsearch refuses for good goes
to the dead-letter topic with the reason before its offset is committed.

One batch is written while the next one is read and decoded (a store thread holds the write), so
Elasticsearch and the ingester work at the same time; batches are still committed one after the
other, in order, each only once it is stored. A rebalance abandons both batches: their records are
read again from the committed offsets (writing them again is harmless, 409s).

With tail sampling (a policy file set) the spans of each record wait in the sampler until their trace
is decided; a batch then writes the kept spans that are due, and the commit of each partition goes
only up to its oldest record whose trace is undecided or whose kept spans are not stored yet
(``sampling.tail.offsets``). A crash or rebalance replays from there, and the decisions, pure functions
of a trace's spans and the policy file, come out the same (see ``sampling.tail.policies``).

Each record belongs to the tenant its ``tenant`` header names (none: the default tenant; see
``kafka_tenants``), and its spans go to that tenant's store pipeline (``pipeline_of``): a batch holding
several tenants is written tenant by tenant (``tenant_writes``), and committed once all are stored. A
record whose header names no valid tenant, or a tenant past TRACESEARCH_MAX_TENANTS, is a bad record:
dead-lettered with the reason, like an undecodable one, and stored nowhere.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError, KafkaError

from tracesearch import gctune, prometheus
from tracesearch.admission import Limits
from tracesearch.codecs import otlp_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import Span
from tracesearch.pipeline.kafka_sink import ensure_topics, make_producer, security_config
from tracesearch.pipeline.kafka_tenants import InvalidTenantHeader, record_headers, record_key, tenant_of
from tracesearch.pipeline.tenant_writes import PipelineOf, Tenant, TenantWrites
from tracesearch.sampling.tail.offsets import Position
from tracesearch.sampling.tail.sampler import Output, TailSampler
from tracesearch.settings import Settings
from tracesearch.storage.contracts import StorageUnavailable
from tracesearch.tenancy import TooManyTenants

log = logging.getLogger(__name__)


def consumer_config(settings: Settings) -> dict[str, Any]:
    """The ingesters' consumer: the connection settings of every client of ours (TLS, SASL), its group."""
    return {
        **security_config(settings),
        "group_id": settings.kafka_group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 500,  # a poll stays small; _batch_due bounds the batch by bytes
        "max_partition_fetch_bytes": 2 * 1024 * 1024,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 2_000,
        "max_poll_interval_ms": 600_000,
        # A group leader whose metadata lacked a just-created topic when it assigned gives out nothing and
        # notices the partitions only at its next refresh: 5 min by default (seen: "No partition metadata"
        # and an idle ingester, although the probe in _await_topic_metadata had seen the partitions).
        "metadata_max_age_ms": 10_000,
    }
LAG_EVERY_S = 5.0
MAX_BACKOFF_S = 10.0


@dataclass(slots=True)
class Batch:
    records: list[Any] = field(default_factory=list)
    size: int = 0
    started: float = field(default_factory=time.monotonic)

    def offsets(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """The offsets to commit: one past the last record of each partition."""
        last: dict[TopicPartition, int] = {}
        for record in self.records:
            tp = TopicPartition(record.topic, record.partition)
            last[tp] = max(last.get(tp, -1), record.offset)
        return {tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in last.items()}


class BadRecord(ValueError):
    """A record that cannot be stored (undecodable, or no valid tenant): it goes to the dead-letter topic."""


@dataclass(slots=True)
class InFlight:
    """A decoded batch whose write runs on the store thread."""

    batch: Batch
    writes: TenantWrites
    bad: list[tuple[Any, str]]
    write: Future[TenantWrites]
    generation: int  # of the partition assignment it was read under
    positions: list[Position] = field(default_factory=list)  # tail sampling: done once stored


class Ingester(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, settings: Settings, pipeline_of: PipelineOf, limits: Limits, sampler: TailSampler | None = None
    ):
        self.settings = settings
        self.pipeline_of = pipeline_of  # a tenant's: writes, then feeds its service graph what it created
        self.limits = limits
        self.sampler = sampler  # tail sampling, when a policy file is set
        self._committed: dict[TopicPartition, int] = {}
        self._last_decided = time.monotonic()
        self.stop = threading.Event()
        self.batch = Batch()
        self.consumer: KafkaConsumer | None = None
        self.dlq: KafkaProducer | None = None
        self._rebalanced = threading.Event()
        self._generation = 0  # bumped by every rebalance: work read before it is abandoned
        self._in_flight: InFlight | None = None
        self._store = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._last_lag = 0.0

    # -- rebalance listener: runs on the client's IO thread, which must not block, so it only
    # -- raises a flag that the poll loop acts on.
    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        log.info("partitions revoked: %s", sorted(str(tp) for tp in revoked))
        self._rebalanced.set()

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(str(tp) for tp in assigned))
        self._rebalanced.set()

    def _after_rebalance(self) -> bool:
        """After a rebalance, abandon the uncommitted batch and restart every partition at its
        committed offset: the client would otherwise keep its own position for a partition it got
        back, past the records we abandoned, and the next commit would skip them."""
        if not self._rebalanced.is_set():
            return False
        assert self.consumer is not None
        self._generation += 1
        self._abandon_in_flight()
        if self.batch.records:
            log.info("rebalance: %d uncommitted records will be read again", len(self.batch.records))
        self.batch = Batch()
        self._committed.clear()
        if self.sampler is not None:
            forgotten = self.sampler.reset()
            log.info("rebalance: %d undecided traces will be read again", forgotten)
        for tp in self.consumer.assignment():
            committed = self.consumer.committed(tp)  # may raise while the broker is away: flag stays set
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
        self._rebalanced.clear()
        return True

    def run(self) -> None:
        ensure_topics(self.settings)
        self._await_topic_metadata()
        self.consumer = KafkaConsumer(**consumer_config(self.settings))
        self.consumer.subscribe([self.settings.kafka_topic], listener=self)
        self.dlq = make_producer(self.settings)
        log.info("ingester consuming %s as group %s", self.settings.kafka_topic, self.settings.kafka_group)
        try:
            while not self.stop.is_set():
                try:
                    self._fill()
                    if self._due():
                        self._hand_over()
                    elif self._in_flight is not None and self._in_flight.write.done():
                        self._finish()  # commit as soon as stored, not only when the next batch is due
                except KafkaError as exc:
                    # The broker went away mid-call: nothing uncommitted is lost, it is read again.
                    log.warning("Kafka error, retrying in 1s: %s", exc)
                    self.stop.wait(1.0)
            self._finish()  # stopping: the write under way completes (or is abandoned) before we leave
        finally:
            # An unfinished batch is abandoned without committing: its records are consumed again.
            self._abandon_in_flight()
            self._store.shutdown(wait=True)
            self.consumer.close(autocommit=False)
            if self.dlq is not None:
                self.dlq.close(timeout=10)

    def _await_topic_metadata(self, timeout_s: float = 30.0) -> None:
        """Wait until the broker lists the topic's partitions before the group's consumer exists: a member
        joining while the topic just created has no metadata yet is assigned nothing, and stays so until
        its next metadata refresh (metadata_max_age_ms, five minutes). A throwaway client asks, so the
        group consumer's own metadata state is left alone (asking it for every topic's metadata made it
        rejoin the group, and a SIGTERM then left stored records uncommitted)."""
        probe = KafkaConsumer(**security_config(self.settings))
        try:
            deadline = time.monotonic() + timeout_s
            while not probe.partitions_for_topic(self.settings.kafka_topic) and time.monotonic() < deadline:
                if self.stop.wait(0.2):
                    return
        finally:
            probe.close()

    def _due(self) -> bool:
        """A batch to write: records waiting long enough, or (tail sampling) traces to decide."""
        if self.batch.records and self._batch_due():
            return True
        return (
            self.sampler is not None
            and len(self.sampler.buffer) > 0
            and time.monotonic() - self._last_decided >= self.settings.ingest_batch_wait_s
        )

    def _batch_due(self) -> bool:
        return (
            self.batch.size >= self.settings.ingest_batch_bytes
            or time.monotonic() - self.batch.started >= self.settings.ingest_batch_wait_s
            or self.stop.is_set()
        )

    def _fill(self) -> None:
        assert self.consumer is not None
        if not self.batch.records:
            self.batch = Batch()
        wait = max(0.0, self.settings.ingest_batch_wait_s - (time.monotonic() - self.batch.started))
        polled = self.consumer.poll(timeout_ms=int(wait * 1000) or 1)
        if self._after_rebalance():
            return  # records of this poll may come from stale positions: read them again
        for records in polled.values():
            self.batch.records.extend(records)
            self.batch.size += sum(len(r.value or b"") for r in records)
        self._report_lag()

    def _read(self, record: Any) -> tuple[Tenant, list[Span]]:
        """A record's tenant and spans; raises ``BadRecord``. The tenant's components are built here,
        so that a tenant past the cap is refused before anything of the batch is written."""
        try:
            tenant = tenant_of(record.headers)
            self.pipeline_of(tenant)
        except (InvalidTenantHeader, TooManyTenants) as exc:
            raise BadRecord(f"no tenant to store it in: {exc}") from None
        try:
            decoded = otlp_proto.decode_export_request(record.value or b"", self.limits)
        except DecodeError as exc:
            raise BadRecord(f"undecodable message: {exc}") from None
        return tenant, decoded.spans

    def _decode(self, batch: Batch) -> tuple[dict[Tenant, list[Span]], list[tuple[Any, str]]]:
        groups: dict[Tenant, list[Span]] = {}
        bad: list[tuple[Any, str]] = []
        received = 0
        for record in batch.records:
            try:
                tenant, spans = self._read(record)
            except BadRecord as exc:
                bad.append((record, str(exc)))
                continue
            groups.setdefault(tenant, []).extend(spans)
            received += len(spans)
        prometheus.SPANS_RECEIVED.labels("kafka").inc(received)
        return groups, bad

    def _hand_over(self) -> None:
        """Decode the due batch while the previous one is written, then start its write once the
        previous one is stored and committed (commits stay in order)."""
        batch, self.batch = self.batch, Batch()
        positions: list[Position] = []
        if self.sampler is None:
            groups, bad = self._decode(batch)
        else:
            groups, bad, positions = self._sample(batch)
        writes = TenantWrites(groups, self.pipeline_of)
        generation = self._generation
        self._finish()
        if self._generation != generation:
            return  # a rebalance while we waited: this batch is read again
        write = self._store.submit(writes.store)
        self._in_flight = InFlight(batch, writes, bad, write, generation, positions)

    def _sample(self, batch: Batch) -> tuple[dict[Tenant, list[Span]], list[tuple[Any, str]], list[Position]]:
        """Tail sampling: offer the batch's records to the sampler and take the decisions now due.
        Returns the kept spans to write, the undecodable records, and the records done once both are
        stored and dead-lettered. Dropped spans go to the observers here, once."""
        assert self.sampler is not None
        now = self._last_decided = time.monotonic()
        out = Output()
        bad: list[tuple[Any, str]] = []
        bad_positions: list[Position] = []
        received = 0
        for record in batch.records:
            position: Position = (TopicPartition(record.topic, record.partition), record.offset)
            try:
                tenant, spans = self._read(record)
            except BadRecord as exc:
                self.sampler.tracker.read(position)
                bad.append((record, str(exc)))
                bad_positions.append(position)
                continue
            received += len(spans)
            self.sampler.offer(position, spans, len(record.value or b""), now, out, tenant)
        prometheus.SPANS_RECEIVED.labels("kafka").inc(received)
        self.sampler.decide_due(now, out)
        for tenant, dropped in out.dropped_by_tenant.items():
            self.pipeline_of(tenant).observe_unstored(dropped)
        return out.kept_by_tenant, bad, out.kept_positions + bad_positions

    def _finish(self) -> None:
        """Wait for the write under way; retry it until stored, dead-letter, commit."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        try:
            result: TenantWrites | None = in_flight.write.result()
        except StorageUnavailable as exc:
            log.warning("storage unavailable: %s", exc)
            result = self._write_until_stored(in_flight)
        if result is None:
            return  # stopping, or a rebalance took the batch
        if self._generation != in_flight.generation:
            return  # stored, but the partitions moved meanwhile: the records are read (and 409) again
        bad = in_flight.bad
        if not self._until_done(in_flight, lambda: self._dead_letter(result, bad)):
            return
        if self.sampler is None:
            self._until_done(in_flight, lambda: self._commit(in_flight.batch))
            return
        self.sampler.stored(in_flight.positions)
        self._until_done(in_flight, self._commit_sampled)

    def _abandon_in_flight(self) -> None:
        """Let the write under way end (Elasticsearch may be storing it) without committing it."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        # The store pipeline fed the service graph what it created: read again, those are 409s, not
        # counted twice.
        with contextlib.suppress(StorageUnavailable):
            in_flight.write.result()

    def _until_done(self, in_flight: InFlight, action: Callable[[], None]) -> bool:
        """Run a broker call until it succeeds, waiting out broker outages with the partitions
        paused; False when we stop first or a rebalance took the batch (it is read again)."""
        backoff = 0.5
        while True:
            try:
                action()
                return True
            except CommitFailedError as exc:
                log.warning("commit refused after a rebalance, records will be consumed again: %s", exc)
                self._rebalanced.set()
                return False
            except KafkaError as exc:
                log.warning("Kafka unavailable, retrying in %.1fs: %s", backoff, exc)
            if not self._wait_paused(backoff) or self._generation != in_flight.generation:
                return False
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _write_until_stored(self, in_flight: InFlight) -> TenantWrites | None:
        """Retry transient storage failures with backoff while the partitions wait (paused, so the
        group keeps us as a member and no new records pile up)."""
        backoff = 0.5
        while True:
            log.warning("retrying the write in %.1fs", backoff)
            if not self._wait_paused(backoff):
                return None
            if self._generation != in_flight.generation:
                return None  # the partitions moved while we waited: their new owner writes them
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            try:
                return in_flight.writes.store()  # the tenants not stored yet
            except StorageUnavailable as exc:
                log.warning("storage unavailable: %s", exc)

    def _wait_paused(self, seconds: float) -> bool:
        assert self.consumer is not None
        assignment = self.consumer.assignment()
        self.consumer.pause(*assignment)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                if self.stop.is_set():
                    return False
                self.consumer.poll(timeout_ms=200)  # heartbeats and rebalances; paused: no records
                if self._after_rebalance():
                    return True
        finally:
            self.consumer.resume(*self.consumer.assignment())
        return True

    def _dead_letter(self, result: TenantWrites, bad: list[tuple[Any, str]]) -> None:
        """Spans storage refused for good, with their tenant (replaying the topic stores them in it), and
        bad records with their own headers (a bad ``tenant`` header included, to see what came)."""
        rejected = result.rejected
        if not rejected and not bad:
            return
        assert self.dlq is not None
        futures = []
        for tenant, item in rejected:
            futures.append(
                self.dlq.send(
                    self.settings.kafka_dlq_topic,
                    key=record_key(tenant, item.span.trace_id),
                    value=otlp_proto.encode_export_request([item.span]),
                    headers=[
                        ("reason", item.reason.encode()),
                        ("span_id", item.span.span_id.encode()),
                        *record_headers(tenant),
                    ],
                )
            )
        for record, reason in bad:
            kept = [(name, value) for name, value in record.headers or () if name != "reason"]
            futures.append(
                self.dlq.send(
                    self.settings.kafka_dlq_topic,
                    key=record.key,
                    value=record.value,
                    headers=[("reason", reason.encode()), *kept],
                )
            )
        for future in futures:
            future.get(timeout=self.settings.kafka_ack_timeout_s)
        prometheus.SPANS_DEAD_LETTERED.inc(len(rejected))
        prometheus.SPANS_REJECTED.labels("kafka", "storage").inc(len(rejected))
        log.warning("dead-lettered %d spans and %d messages", len(rejected), len(bad))

    def _commit(self, batch: Batch) -> None:
        assert self.consumer is not None
        offsets = batch.offsets()
        assigned = self.consumer.assignment()
        offsets = {tp: om for tp, om in offsets.items() if tp in assigned}
        if offsets:
            self.consumer.commit(offsets)

    def _commit_sampled(self) -> None:
        """Tail sampling: per partition, up to the oldest record not done (undecided, or kept and not
        stored), when that moved."""
        assert self.consumer is not None and self.sampler is not None
        assigned = self.consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(point, "", -1)
            for tp, point in self.sampler.commit_points().items()
            if tp in assigned and point > self._committed.get(tp, -1)
        }
        if offsets:
            self.consumer.commit(offsets)
            self._committed.update({tp: om.offset for tp, om in offsets.items()})

    def _report_lag(self) -> None:
        assert self.consumer is not None
        now = time.monotonic()
        if now - self._last_lag < LAG_EVERY_S:
            return
        self._last_lag = now
        try:
            assignment = list(self.consumer.assignment())
            ends = self.consumer.end_offsets(assignment)
            for tp in assignment:
                lag = max(0, ends.get(tp, 0) - self.consumer.position(tp))
                prometheus.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        except KafkaError as exc:
            log.debug("lag not measured: %s", exc)


def run_ingester(
    settings: Settings,
    pipeline_of: PipelineOf,
    limits: Limits,
    close: Callable[[], None],
    sampler: TailSampler | None = None,
) -> int:
    """Consume until SIGTERM/SIGINT, storing each record's spans through ``pipeline_of(its tenant)``;
    ``close`` flushes what the process still holds (every tenant's service graph). With ``sampler``,
    traces are tail sampled; undecided ones at exit are left uncommitted and read again by the
    partition's next owner."""
    ingester = Ingester(settings, pipeline_of, limits, sampler)
    gctune.tune(gctune.INGESTER_GEN0_THRESHOLD)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current batch, then stopping", signum)
        ingester.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if settings.ingester_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.ingester_metrics_port, addr="127.0.0.1")
    try:
        ingester.run()
    finally:
        close()  # pairs what still waits and flushes the service-graph aggregates
    return 0
