"""Benchmarks 1 and 2: OTLP ingest through the service, and the raw ``_bulk`` ceiling on the same spans.

Repeats alternate service and ceiling, so a slow drift of the machine (page cache, JIT, another
process) affects both alike. Each repeat starts from empty indices of the same prefixes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bench import es, hotpath, kafkamode, loadgen, procs, service, stats, workload
from bench.config import Config
from bench.log import say
from tracesearch.storage.es.indices import span_index_pattern

OTLP_HEADERS = {"Content-Type": "application/x-protobuf"}
BULK_HEADERS = {"Content-Type": "application/x-ndjson"}
# The smallest answer that still says whether any item failed; the ceiling must not pay for more.
BULK_PATH = "/_bulk?filter_path=errors"
BULK_OK = b'{"errors":false}'
SETTLE_S = 3.0
HOTPATH_BODIES = 40
# A freshly started Elasticsearch spends its first ~100k documents compiling its indexing code (JIT
# threads count as its CPU): that happens before repeat 1, on bodies that are then deleted.
PRIME_BODIES = 200
# A repeat during which other processes used more than this share of the machine is run again
# (at most EXTRA_REPEATS times in a run), and reported as discarded.
OTHER_LIMIT = 0.05
EXTRA_REPEATS = 2


@dataclass
class Phase:
    """One measured pass over the workload."""

    name: str
    spans: int
    seconds: float
    batch_latency_p50_s: float
    service_cpu_s: float | None
    es_cpu_s: float | None
    loadgen_cpu_s: float
    other_cpu_s: float
    machine_busy_s: float
    stored: int

    @property
    def spans_per_s(self) -> float:
        return self.spans / self.seconds

    def busy_share(self, cores: int) -> float:
        """How much of the machine's CPU was in use: near 100% means the phase was CPU-bound."""
        return self.machine_busy_s / (self.seconds * cores)

    def other_share(self, cores: int) -> float:
        """The share of the machine used by processes we do not account for."""
        return self.other_cpu_s / (self.seconds * cores)

    def us_per_span(self, cpu_s: float | None) -> float | None:
        return None if cpu_s is None else cpu_s * 1e6 / self.spans


@dataclass
class IngestResult:
    ingest: list[Phase]
    ceiling: list[Phase]
    work: workload.WorkloadInfo
    concurrency: int
    hot: hotpath.HotPath | None = None
    discarded: list[tuple[Phase, Phase]] = field(default_factory=list)
    kafka: kafkamode.KafkaResult | None = None

    @property
    def ingest_median(self) -> float:
        return stats.median([p.spans_per_s for p in self.ingest])

    @property
    def ceiling_median(self) -> float:
        return stats.median([p.spans_per_s for p in self.ceiling])

    @property
    def ratio(self) -> float:
        return self.ingest_median / self.ceiling_median


def check_otlp(status: int, body: bytes) -> str | None:
    if status == 200 and not body:
        return None  # an empty ExportTraceServiceResponse: no partialSuccess
    if status == 200:
        reply = ExportTraceServiceResponse.FromString(body)
        if not reply.HasField("partial_success"):
            return None
        partial = reply.partial_success
        return f"partialSuccess: {partial.rejected_spans} rejected: {partial.error_message[:300]}"
    return f"HTTP {status}: {body[:300]!r}"


def check_bulk(status: int, body: bytes) -> str | None:
    return None if status == 200 and body == BULK_OK else f"HTTP {status}: {body[:300]!r}"


def _measure(
    name: str,
    post: Callable[[list[bytes]], loadgen.LoadResult],
    warmup: list[bytes],
    bodies: list[bytes],
    spans: int,
    service_cpu: Callable[[], float] | None,
    es_pid: int | None,
) -> tuple[Phase, list[str]]:
    failures = post(warmup).failures
    time.sleep(SETTLE_S)  # let the index creation and the first refreshes finish outside the timing

    def sample() -> tuple[float, float, float, float]:
        service_s = service_cpu() if service_cpu else 0.0
        es_s = procs.cpu_seconds(es_pid) if es_pid else 0.0
        return service_s, es_s, procs.own_cpu(), procs.machine_busy_seconds()

    before = sample()
    result = post(bodies)
    after = sample()
    used = [a - b for a, b in zip(after, before, strict=True)]
    failures += result.failures
    if result.reconnects:
        failures.append(f"{result.reconnects} connections were dropped and reopened")
    phase = Phase(
        name=name,
        spans=spans,
        seconds=result.seconds,
        batch_latency_p50_s=stats.median(result.latencies_s),
        service_cpu_s=used[0] if service_cpu else None,
        es_cpu_s=used[1] if es_pid else None,
        loadgen_cpu_s=used[2],
        other_cpu_s=max(0.0, used[3] - used[0] - used[1] - used[2]),
        machine_busy_s=used[3],
        stored=0,
    )
    return phase, failures


def _verify_and_clear(es_url: str, prefix: str, phase: Phase, expected: int, failures: list[str]) -> None:
    phase.stored = es.count(es_url, prefix)
    if failures or phase.stored != expected:
        raise RuntimeError(
            f"{phase.name}: {len(failures)} failed requests, {phase.stored} spans stored of {expected} sent: "
            + "; ".join(failures[:5])
        )
    es.delete_indices(es_url, span_index_pattern(prefix))
    time.sleep(SETTLE_S)


def _prime(es_url: str, prefix: str, bodies: list[bytes], post: Callable[[list[bytes]], loadgen.LoadResult]) -> None:
    failures = post(bodies).failures
    if failures:
        raise RuntimeError(f"priming Elasticsearch failed: {failures[:3]}")
    es.delete_indices(es_url, span_index_pattern(prefix))
    time.sleep(SETTLE_S)


def run(config: Config, es_url: str, es_pid: int | None) -> IngestResult:
    run_id = uuid.uuid4().hex[:8]
    ingest_prefix, bulk_prefix = f"bench-ingest-{run_id}", f"bench-bulk-{run_id}"
    say(f"generating {config.spans} spans (+{config.warmup_batches} warm-up batches) of 4 services")
    work = workload.prepare(config, bulk_prefix)
    info = work.info()
    say(
        f"workload ready in {info.prepare_seconds:.0f}s: {len(work.otlp)} OTLP bodies of {info.otlp_kib:.0f} KiB, "
        f"_bulk bodies of {info.bulk_kib:.0f} KiB"
    )
    expected = work.warmup_spans + work.spans
    es_host, es_port = es.host_port(es_url)
    result = IngestResult([], [], info, config.concurrency)
    es.install(es_url, bulk_prefix)
    running = service.start(es_url, ingest_prefix, config.workers, config.threads)
    try:

        def to_service(bodies: list[bytes]) -> loadgen.LoadResult:
            return loadgen.post_all(running.port, "/v1/traces", OTLP_HEADERS, bodies, config.concurrency, check_otlp)

        def to_bulk(bodies: list[bytes]) -> loadgen.LoadResult:
            return loadgen.post_all(es_port, BULK_PATH, BULK_HEADERS, bodies, config.concurrency, check_bulk, es_host)

        say("priming Elasticsearch (JIT) with raw _bulk bodies that are deleted again")
        _prime(es_url, bulk_prefix, work.bulk[:PRIME_BODIES], to_bulk)
        cores = os.cpu_count() or 1
        while len(result.ingest) < config.repeats:
            repeat = len(result.ingest) + 1
            ours, failures = _measure(
                "tracesearch", to_service, work.warmup_otlp, work.otlp, work.spans, running.cpu_seconds, es_pid
            )
            _verify_and_clear(es_url, ingest_prefix, ours, expected, failures)
            raw, failures = _measure("_bulk", to_bulk, work.warmup_bulk, work.bulk, work.spans, None, es_pid)
            _verify_and_clear(es_url, bulk_prefix, raw, expected, failures)
            say(f"repeat {repeat}: tracesearch {ours.spans_per_s:,.0f} spans/s, _bulk {raw.spans_per_s:,.0f} spans/s")
            other = max(ours.other_share(cores), raw.other_share(cores))
            if other > OTHER_LIMIT and len(result.discarded) < EXTRA_REPEATS and es_pid is not None:
                say(f"repeat {repeat} discarded: other processes used {other:.0%} of the machine; running it again")
                result.discarded.append((ours, raw))
                continue
            result.ingest.append(ours)
            result.ceiling.append(raw)
    finally:
        running.stop()
        es.drop_prefix(es_url, ingest_prefix)
        es.drop_prefix(es_url, bulk_prefix)
    if not config.skip_kafka:
        # The same bodies again, through Kafka and ingester processes (after the direct repeats, in this run).
        result.kafka = kafkamode.run(
            config,
            es_url,
            es_pid,
            work.warmup_otlp,
            work.otlp,
            work.warmup_spans,
            work.spans,
            workload.INGEST_SERVICES,
            check_otlp,
        )
    # With the service stopped and Elasticsearch idle, the in-process timing has a core to itself.
    say("timing the service's per-span steps in process")
    result.hot = hotpath.measure(work.otlp[:HOTPATH_BODIES])
    return result
