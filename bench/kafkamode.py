"""Kafka pipeline mode, end to end: the service producing to Kafka and ``python -m tracesearch ingester``
processes writing to Elasticsearch: devstack.pipeline's topology, the one the integration tests run.

Two measurements, each phase on a topic, dead-letter topic, consumer group and index prefix of its own:

- throughput: the direct phases' pre-encoded OTLP bodies, posted as fast as the same connections allow;
  a span counts once the service acknowledged it AND the index holds it (``_count`` after a refresh),
  so a phase lasts from the first post until the index holds every span;
- latency: small batches paced at a share of the measured peak; for sampled batches, the time from the
  post until every span of the batch is visible to a search, without forcing a refresh.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka.admin import KafkaAdminClient

from bench import es, loadgen, otlp, procs, service, stats, synth
from bench.config import Config
from bench.log import say
from devstack import launch
from devstack.pipeline import KafkaPipeline
from tracesearch.storage.es.indices import span_index_pattern

OTLP_HEADERS = {"Content-Type": "application/x-protobuf"}
NS_PER_S = 1_000_000_000
SETTLE_S = 3.0
START_TIMEOUT_S = 60.0
PARTITIONS = 4  # TRACESEARCH_KAFKA_PARTITIONS, set explicitly so the assignment check knows the number
# After the last acknowledgement, the index is checked (refresh + _count) this often until it holds everything.
COUNT_POLL_S = 0.1
INDEXED_TIMEOUT_S = 300.0
# The ingesters' counters not moving for this long (their retry backoff tops out at 10 s) means they are stuck.
STALL_S = 30.0
# Latency: every SAMPLE_EVERY-th batch is followed, by a search every POLL_S, for at most VISIBLE_TIMEOUT_S.
SAMPLE_EVERY = 4
POLL_S = 0.1
VISIBLE_TIMEOUT_S = 60.0
LATENCY_SENDERS = 8
LATENCY_WARMUP_BATCHES = 32


class PhaseFailed(RuntimeError):
    """A Kafka phase that could not complete; the run reports it and goes on."""


@dataclass
class Cpu:
    """CPU seconds of each party over one phase."""

    service: float
    ingesters: float
    es: float | None
    kafka: float | None
    loadgen: float
    machine_busy: float

    @property
    def other(self) -> float:
        known = self.service + self.ingesters + (self.es or 0.0) + (self.kafka or 0.0) + self.loadgen
        return max(0.0, self.machine_busy - known)


@dataclass
class KafkaPhase:
    """One end-to-end pass over the ingest workload in Kafka mode."""

    ingesters: int
    spans: int
    seconds: float  # first post -> the index holds every span
    acked_seconds: float  # first post -> last acknowledgement
    batch_latency_p50_s: float
    cpu: Cpu
    stored: int
    names: str

    @property
    def spans_per_s(self) -> float:
        return self.spans / self.seconds

    @property
    def acked_per_s(self) -> float:
        return self.spans / self.acked_seconds

    def us(self, cpu_s: float | None) -> float | None:
        return None if cpu_s is None else cpu_s * 1e6 / self.spans

    def busy_share(self, cores: int) -> float:
        return self.cpu.machine_busy / (self.seconds * cores)


@dataclass
class LatencyResult:
    ingesters: int
    target_spans_per_s: float
    achieved_spans_per_s: float
    seconds: float
    batches: int
    batch_spans: int
    spans: int
    samples_s: list[float]
    ack_p50_s: float
    behind_s: float  # how late the last post left compared with its schedule
    cpu: Cpu
    names: str

    @property
    def p50_s(self) -> float:
        return stats.median(self.samples_s)

    @property
    def p95_s(self) -> float:
        return stats.percentile(self.samples_s, 95)

    @property
    def max_s(self) -> float:
        return max(self.samples_s)


@dataclass
class KafkaResult:
    phases: list[KafkaPhase]
    latency: LatencyResult | None
    partitions: int = PARTITIONS
    # (ingesters, why) of phases that could not complete; "latency" for the latency phase.
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def peak(self) -> KafkaPhase | None:
        return max(self.phases, key=lambda p: p.spans_per_s) if self.phases else None


def bootstrap() -> str:
    """TRACESEARCH_KAFKA_BOOTSTRAP when set, else the dev stack's broker (started if it is not running)."""
    if os.environ.get("TRACESEARCH_KAFKA_BOOTSTRAP"):
        return os.environ["TRACESEARCH_KAFKA_BOOTSTRAP"]
    from devstack import kafka

    return kafka.ensure_running()


def broker_pid() -> int | None:
    """The local broker's JVM, if it runs on this machine (its CPU is part of the pipeline's cost)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"kafka.Kafka\x00" in cmdline or cmdline.endswith(b"kafka.Kafka"):
                return int(entry.name)
    return None


def assigned(ingester: launch.IngesterProcess) -> int | None:
    """Partitions of its latest assignment, per its log (None: no assignment yet)."""
    lines = [line for line in ingester.log_text().splitlines() if "partitions assigned:" in line]
    return lines[-1].count("partition=") if lines else None


class Stack(KafkaPipeline[service.Service]):
    """devstack.pipeline's topology with the bench's service (CPU accounted) and a known partition count;
    its Kafka topics and indices go when it stops."""

    def __init__(self, es_url: str, bootstrap: str, prefix: str, config: Config) -> None:
        folder = Path(tempfile.mkdtemp(prefix=f"tracesearch-bench-{prefix}-"))
        settings = {"TRACESEARCH_KAFKA_PARTITIONS": str(PARTITIONS)}
        super().__init__(es_url, bootstrap, prefix, folder, settings=settings, ingester_timeout=START_TIMEOUT_S)
        self.config = config

    def _start_receiver(self, env: dict[str, str]) -> service.Service:
        return service.start(self.es_url, self.prefix, self.config.workers, self.config.threads, env)

    @property
    def names(self) -> str:
        env = self.env
        return (
            f"topic `{env['TRACESEARCH_KAFKA_TOPIC']}`, group `{env['TRACESEARCH_KAFKA_GROUP']}`, "
            f"prefix `{self.prefix}`"
        )

    def start(self, ingesters: int) -> service.Service:
        running = self.start_service()
        for _ in range(ingesters):
            self.start_ingester()
        self._wait_assigned()
        return running

    def _wait_assigned(self) -> None:
        """Until every ingester holds partitions and together they hold all of them (the group settled)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            counts = [assigned(i) for i in self.ingesters]
            if all(c for c in counts) and sum(c or 0 for c in counts) == PARTITIONS:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the consumer group did not settle: assignments {[assigned(i) for i in self.ingesters]}")

    def check_alive(self) -> None:
        for ingester in self.ingesters:
            if not ingester.alive():
                raise RuntimeError(f"an ingester exited:\n{ingester.log_tail()}")

    def last_problem(self) -> str:
        """The latest warning or error an ingester logged, to say why a phase failed."""
        found = ""
        for ingester in self.ingesters:
            for line in ingester.log_text().splitlines():
                if " WARNING " in line or " ERROR " in line:
                    found = line
        return found or "nothing logged"

    def indexed_total(self) -> float:
        """The ingesters' tracesearch_spans_indexed_total added up (duplicates included)."""
        return sum(i.indexed() for i in self.ingesters)

    def ingester_cpu(self) -> float:
        return procs.total_cpu(i.pid for i in self.ingesters)

    def stop(self) -> None:
        failed = sys.exc_info()[0] is not None
        super().stop()
        _delete_topics(self.bootstrap, self.topics)
        es.drop_prefix(self.es_url, self.prefix)
        service.discard(self.folder, keep=failed)


def _delete_topics(bootstrap_servers: str, topics: list[str]) -> None:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","), request_timeout_ms=10_000)
    except Exception as exc:  # cleanup must not hide the run's own error
        say(f"could not delete topics {topics}: {exc!r}")
        return
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            admin.delete_topics(doomed)
    except Exception as exc:
        say(f"could not delete topics {topics}: {exc!r}")
    finally:
        admin.close()


def _wait_indexed(
    es_url: str, prefix: str, expected: int, stack: Stack | None = None, timeout_s: float = INDEXED_TIMEOUT_S
) -> float:
    """perf_counter time at which a refresh began after which ``_count`` found every span.

    With ``stack``, the ingesters' own counters are watched first, so that Elasticsearch is not made to
    refresh ten times a second while it is still indexing (which would slow down what is measured);
    the refresh and ``_count`` then decide."""
    deadline = time.perf_counter() + timeout_s
    last, moved = -1.0, time.perf_counter()
    while stack is not None and (indexed := stack.indexed_total()) < expected and time.perf_counter() < deadline:
        stack.check_alive()
        if indexed > last:
            last, moved = indexed, time.perf_counter()
        elif time.perf_counter() - moved > STALL_S:
            raise PhaseFailed(
                f"the ingesters indexed {indexed:,.0f} of {expected:,} spans and then nothing for {STALL_S:.0f} s; "
                f"last log line: {stack.last_problem()}"
            )
        time.sleep(COUNT_POLL_S)
    while True:
        checked_at = time.perf_counter()
        stored = es.count(es_url, prefix)
        if stored >= expected:
            if stored > expected:
                raise RuntimeError(f"{prefix}: {stored} spans stored, more than the {expected} sent")
            return checked_at
        if checked_at > deadline:
            raise RuntimeError(f"{prefix}: only {stored} of {expected} spans indexed after {timeout_s:.0f} s")
        time.sleep(COUNT_POLL_S)


# service, ingesters, Elasticsearch, Kafka, load generator, whole machine
Sample = tuple[float, float, float, float, float, float]


class _CpuMeter:
    def __init__(self, stack: Stack, es_pid: int | None, kafka_pid: int | None) -> None:
        self.stack, self.es_pid, self.kafka_pid = stack, es_pid, kafka_pid

    def sample(self) -> Sample:
        assert self.stack.service is not None
        return (
            self.stack.service.cpu_seconds(),
            self.stack.ingester_cpu(),
            procs.cpu_seconds(self.es_pid) if self.es_pid else 0.0,
            procs.cpu_seconds(self.kafka_pid) if self.kafka_pid else 0.0,
            procs.own_cpu(),
            procs.machine_busy_seconds(),
        )

    def used(self, before: Sample, after: Sample) -> Cpu:
        d = [a - b for a, b in zip(after, before, strict=True)]
        return Cpu(
            service=d[0],
            ingesters=d[1],
            es=d[2] if self.es_pid else None,
            kafka=d[3] if self.kafka_pid else None,
            loadgen=d[4],
            machine_busy=d[5],
        )


def throughput(
    config: Config,
    es_url: str,
    bootstrap_servers: str,
    es_pid: int | None,
    kafka_pid: int | None,
    ingesters: int,
    warmup: Sequence[bytes],
    bodies: Sequence[bytes],
    warmup_spans: int,
    spans: int,
    check: loadgen.Check,
) -> KafkaPhase:
    prefix = f"bench-kafka{ingesters}-{uuid.uuid4().hex[:8]}"
    stack = Stack(es_url, bootstrap_servers, prefix, config)
    try:
        port = stack.start(ingesters).port

        def post(batch: Sequence[bytes]) -> loadgen.LoadResult:
            return loadgen.post_all(port, "/v1/traces", OTLP_HEADERS, batch, config.concurrency, check)

        failures = post(warmup).failures
        _wait_indexed(es_url, prefix, warmup_spans, stack)
        time.sleep(SETTLE_S)
        meter = _CpuMeter(stack, es_pid, kafka_pid)
        before = meter.sample()
        began = time.perf_counter()
        result = post(bodies)
        done = _wait_indexed(es_url, prefix, warmup_spans + spans, stack)
        after = meter.sample()
        stack.check_alive()
        failures += result.failures
        if result.reconnects:
            failures.append(f"{result.reconnects} connections were dropped and reopened")
        if failures:
            raise RuntimeError(f"Kafka, {ingesters} ingester(s): {len(failures)} failed requests: {failures[:5]}")
        phase = KafkaPhase(
            ingesters=ingesters,
            spans=spans,
            seconds=done - began,
            acked_seconds=result.seconds,
            batch_latency_p50_s=stats.median(result.latencies_s),
            cpu=meter.used(before, after),
            stored=es.count(es_url, prefix),
            names=stack.names,
        )
    finally:
        stack.stop()
        time.sleep(SETTLE_S)
    return phase


@dataclass
class _Batch:
    body: bytes
    trace_ids: list[str]
    spans: int


def _latency_batches(config: Config, services: Sequence[str], count: int) -> list[_Batch]:
    """Batches of exactly ``latency_batch_spans`` spans made of whole traces of 4-16 spans (the last one
    cut short), so a terms query on the batch's trace ids counts exactly its spans."""
    factory = synth.TraceFactory(services, config.seed + 1)
    shape = synth.Shape(services, 4, 16)
    now = time.time_ns()
    first, last = now - 900 * NS_PER_S, now - 60 * NS_PER_S
    made = []
    for _ in range(count):
        traces = list(synth.traces(factory, config.latency_batch_spans, first, last, shape))
        spans = list(itertools.chain.from_iterable(traces))
        made.append(_Batch(otlp.encode_request(spans), sorted({s.trace_id for s in spans}), len(spans)))
    return made


class _Follower:
    """Searches, every POLL_S, whether each followed batch is wholly visible (one ``_msearch`` of
    ``size: 0`` searches with a terms query on the batch's trace ids; no refresh is forced)."""

    def __init__(self, es_url: str, prefix: str) -> None:
        self.host, self.port = es.host_port(es_url)
        self.index = span_index_pattern(prefix)
        self.lock = threading.Lock()
        self.waiting: list[tuple[float, _Batch]] = []
        self.samples: list[float] = []
        self.failures: list[str] = []
        self.senders_done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def follow(self, posted_at: float, batch: _Batch) -> None:
        with self.lock:
            self.waiting.append((posted_at, batch))

    def _run(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            while True:
                tick = time.perf_counter()
                with self.lock:
                    waiting = list(self.waiting)
                if not waiting and self.senders_done.is_set():
                    return
                if waiting:
                    self._check(connection, waiting)
                time.sleep(max(0.0, POLL_S - (time.perf_counter() - tick)))
        except Exception as exc:
            self.failures.append(f"follower died: {exc!r}")
        finally:
            connection.close()

    def _check(self, connection: http.client.HTTPConnection, waiting: list[tuple[float, _Batch]]) -> None:
        lines = []
        header = json.dumps({"index": self.index, "allow_no_indices": True, "ignore_unavailable": True})
        for _, batch in waiting:
            query = {"size": 0, "track_total_hits": True, "query": {"terms": {"trace.id": batch.trace_ids}}}
            lines += [header, json.dumps(query)]
        body = ("\n".join(lines) + "\n").encode()
        connection.request("POST", "/_msearch", body, {"Content-Type": "application/x-ndjson"})
        response = connection.getresponse()
        raw = response.read()
        answered = time.perf_counter()
        if response.status != 200:
            raise RuntimeError(f"_msearch: HTTP {response.status}: {raw[:300]!r}")
        answers = json.loads(raw)["responses"]
        done = set()
        for (posted_at, batch), answer in zip(waiting, answers, strict=True):
            if "error" in answer:
                raise RuntimeError(f"_msearch item: {answer['error']}")
            visible = int(answer["hits"]["total"]["value"])
            if visible == batch.spans:
                self.samples.append(answered - posted_at)
                done.add(id(batch))
            elif visible > batch.spans:
                raise RuntimeError(f"{visible} spans visible of a batch of {batch.spans}")
            elif answered - posted_at > VISIBLE_TIMEOUT_S:
                self.failures.append(f"a batch was not visible after {VISIBLE_TIMEOUT_S:.0f} s ({visible} spans)")
                done.add(id(batch))
        with self.lock:
            self.waiting = [(t, b) for t, b in self.waiting if id(b) not in done]


def latency(
    config: Config,
    es_url: str,
    bootstrap_servers: str,
    es_pid: int | None,
    kafka_pid: int | None,
    ingesters: int,
    target_spans_per_s: float,
    services: Sequence[str],
    check: loadgen.Check,
) -> LatencyResult:
    per_batch = config.latency_batch_spans
    batches_per_s = target_spans_per_s / per_batch
    count = max(1, round(batches_per_s * config.latency_seconds))
    say(f"generating {LATENCY_WARMUP_BATCHES}+{count} batches of {per_batch} spans for the latency phase")
    made = _latency_batches(config, services, LATENCY_WARMUP_BATCHES + count)
    warmup, measured = made[:LATENCY_WARMUP_BATCHES], made[LATENCY_WARMUP_BATCHES:]
    prefix = f"bench-kafkalat-{uuid.uuid4().hex[:8]}"
    stack = Stack(es_url, bootstrap_servers, prefix, config)
    try:
        port = stack.start(ingesters).port
        warm = loadgen.post_all(port, "/v1/traces", OTLP_HEADERS, [b.body for b in warmup], LATENCY_SENDERS, check)
        if warm.failures:
            raise RuntimeError(f"latency warm-up failed: {warm.failures[:3]}")
        _wait_indexed(es_url, prefix, sum(b.spans for b in warmup), stack)
        time.sleep(SETTLE_S)
        follower = _Follower(es_url, prefix)
        meter = _CpuMeter(stack, es_pid, kafka_pid)
        acks = [0.0] * len(measured)
        failures: list[str] = []
        behind = [0.0]
        next_index = itertools.count().__next__

        def sender(start: float) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                while (index := next_index()) < len(measured):
                    due = start + index / batches_per_s
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    posted_at = time.perf_counter()
                    behind[0] = max(behind[0], posted_at - due)
                    connection.request("POST", "/v1/traces", measured[index].body, OTLP_HEADERS)
                    response = connection.getresponse()
                    answer = response.read()
                    acks[index] = time.perf_counter() - posted_at
                    problem = check(response.status, answer)
                    if problem is not None:
                        failures.append(f"batch {index}: {problem}")
                    elif index % SAMPLE_EVERY == 0:
                        follower.follow(posted_at, measured[index])
            except Exception as exc:
                failures.append(f"sender died: {exc!r}")
            finally:
                connection.close()

        before = meter.sample()
        start = time.perf_counter() + 0.05
        threads = [threading.Thread(target=sender, args=(start,), daemon=True) for _ in range(LATENCY_SENDERS)]
        follower.thread.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        posting_s = time.perf_counter() - start
        after = meter.sample()
        follower.senders_done.set()
        follower.thread.join(VISIBLE_TIMEOUT_S + 10)
        stack.check_alive()
        failures += follower.failures
        if failures or follower.thread.is_alive():
            raise RuntimeError(f"latency phase: {len(failures)} failures: {failures[:5]}")
        spans = sum(b.spans for b in measured)
        _wait_indexed(es_url, prefix, spans + sum(b.spans for b in warmup))
        result = LatencyResult(
            ingesters=ingesters,
            target_spans_per_s=target_spans_per_s,
            achieved_spans_per_s=spans / posting_s,
            seconds=posting_s,
            batches=len(measured),
            batch_spans=per_batch,
            spans=spans,
            samples_s=follower.samples,
            ack_p50_s=stats.median(acks),
            behind_s=behind[0],
            cpu=meter.used(before, after),
            names=stack.names,
        )
    finally:
        stack.stop()
    return result


def run(
    config: Config,
    es_url: str,
    es_pid: int | None,
    warmup: Sequence[bytes],
    bodies: Sequence[bytes],
    warmup_spans: int,
    spans: int,
    services: Sequence[str],
    check: loadgen.Check,
) -> KafkaResult:
    """One throughput phase per ingester count on the direct phases' workload; then the latency phase at
    ``latency_load`` of the best of them, with that phase's number of ingesters."""
    servers = bootstrap()
    kafka_pid = broker_pid()
    result = KafkaResult([], None)
    for count in config.kafka_ingesters:
        say(f"Kafka mode, {count} ingester(s): posting the workload, waiting until the index holds it")
        try:
            done = throughput(
                config, es_url, servers, es_pid, kafka_pid, count, warmup, bodies, warmup_spans, spans, check
            )
        except PhaseFailed as exc:
            say(f"Kafka mode, {count} ingester(s) FAILED: {exc}")
            result.failures.append((str(count), str(exc)))
            continue
        result.phases.append(done)
        say(
            f"Kafka mode, {count} ingester(s): {done.spans_per_s:,.0f} spans/s acknowledged and indexed "
            f"({done.acked_per_s:,.0f} spans/s acknowledged)"
        )
    peak = result.peak
    if peak is None:
        result.failures.append(("latency", "not measured: no Kafka throughput phase completed, so there is no peak"))
        return result
    target = peak.spans_per_s * config.latency_load
    say(
        f"latency to searchable at {target:,.0f} spans/s for {config.latency_seconds:.0f} s, "
        f"{peak.ingesters} ingester(s)"
    )
    result.latency = latency(config, es_url, servers, es_pid, kafka_pid, peak.ingesters, target, services, check)
    lat = result.latency
    say(f"latency: p50 {lat.p50_s:.2f} s, p95 {lat.p95_s:.2f} s over {len(lat.samples_s)} batches")
    return result
