"""One repeat of one system: start it, warm it up, load the corpus, wait until every span is searchable,
force-merge, query, measure the disk again once settled, stop, delete its indices.

CPU is utime + stime from /proc over the measured phase (first request sent to the last span
searchable), of the system's own processes, of Elasticsearch and of the ``GET /`` shim apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from bench import es, loadgen, procs
from bench.log import say
from bench.peers import queries
from bench.peers.corpus import Corpus
from bench.peers.systems import System

POLL_S = 0.25
# After the last answer, a count that has not moved for this long is final: the rest was lost.
STALL_S = 15.0
SETTLE_S = 2.0
FORCE_MERGE_TIMEOUT_S = 900.0
# Elasticsearch renews peer-recovery retention leases every 30 s (not settable per index).
LEASE_TIMEOUT_S = 180.0
LEASE_POLL_S = 2.0


@dataclass(frozen=True)
class Options:
    concurrency: int
    requests: int
    warmup_requests: int
    seed: int
    progress: bool = True


@dataclass
class Run:
    system: str
    repeat: int
    sent: int
    acknowledged: int
    stored: int
    seconds: float
    own_cpu_s: float
    es_cpu_s: float
    shim_cpu_s: float
    other_cpu_s: float
    store_bytes: int
    documents: int
    peak_rss_mib: float
    # How long the CPU was sampled over: past ``seconds`` when the count stalled short of the spans sent.
    cpu_window_s: float
    queries: dict[str, queries.QueryStats] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # Bytes once every shard's retention lease passed its last operation, merged again (0: not measured).
    settled_bytes: int = 0

    @property
    def complete(self) -> bool:
        return self.stored == self.sent

    @property
    def spans_per_s(self) -> float:
        """Stored spans over the time until the last of them was searchable."""
        return self.stored / self.seconds

    @property
    def other_cores(self) -> float:
        """Cores that processes other than the system, Elasticsearch, the shim and the bench kept busy."""
        return self.other_cpu_s / self.cpu_window_s

    def us_per_span(self, cpu_s: float) -> float:
        """Per span sent: a system that drops spans does not look cheaper per span for it."""
        return cpu_s * 1e6 / self.sent

    @property
    def bytes_per_span(self) -> float:
        return self.store_bytes / max(1, self.documents)

    @property
    def settled_bytes_per_span(self) -> float:
        """What a daily index keeps once merged as it grows: no ``_recovery_source`` left (see settled_store_bytes)."""
        return (self.settled_bytes or self.store_bytes) / max(1, self.documents)


@dataclass(frozen=True)
class Cpu:
    own: float
    es: float
    shim: float
    bench: float
    machine: float


def count(es_url: str, pattern: str) -> int:
    """Searchable spans now: no refresh is forced, so this is what a search would see."""
    try:
        return int(es.call(es_url, "GET", f"/{pattern}/_count?allow_no_indices=true")["count"])
    except es.EsError as exc:
        if " 503 " in str(exc):  # an index just created, its shard not started yet
            return 0
        raise


def wait_searchable(es_url: str, pattern: str, expected: int) -> tuple[int, float]:
    """(spans searchable, the moment the count reached ``expected`` or last moved before a stall)."""
    last, moved = -1, time.perf_counter()
    while True:
        n, now = count(es_url, pattern), time.perf_counter()
        if n != last:
            last, moved = n, now
        if n >= expected:
            return n, now
        if now - moved > STALL_S:
            return n, moved
        time.sleep(POLL_S)


def post(
    system: System, bodies: list[bytes], spans: list[int], options: Options, label: str
) -> tuple[loadgen.LoadResult, int]:
    """Every body once, ``concurrency`` in flight, a progress bar of spans answered; (result, spans acknowledged)."""
    target = system.ingest()
    bar = tqdm(total=sum(spans), unit="span", unit_scale=True, desc=label, leave=False, disable=not options.progress)
    try:
        result = loadgen.post_all(
            target.port,
            target.path,
            {"Content-Type": target.content_type},
            bodies,
            options.concurrency,
            target.check,
            on_answer=lambda index: bar.update(spans[index]),
        )
    finally:
        bar.close()
    failed = set(result.failed)
    acknowledged = sum(n for i, n in enumerate(spans) if i not in failed)
    return result, acknowledged


def store_bytes(es_url: str, pattern: str) -> tuple[int, int]:
    """(bytes on disk, documents) of the system's indices after a merge to one segment each."""
    es.call(es_url, "POST", f"/{pattern}/_refresh?allow_no_indices=true")
    es.call(
        es_url,
        "POST",
        f"/{pattern}/_forcemerge?max_num_segments=1&allow_no_indices=true",
        timeout=FORCE_MERGE_TIMEOUT_S,
    )
    answer = es.call(es_url, "GET", f"/{pattern}/_stats/store,docs?allow_no_indices=true")
    primaries = answer["_all"]["primaries"]
    return int(primaries.get("store", {}).get("size_in_bytes", 0)), int(primaries.get("docs", {}).get("count", 0))


def settled_store_bytes(es_url: str, pattern: str) -> int:
    """Bytes on disk once no retention lease holds the indexing history any more, merged to one segment.

    An index whose ``_source`` leaves fields out keeps each document's original as ``_recovery_source``
    until the shard's peer-recovery retention lease moved past it; a force-merge right after a burst keeps
    it all. A live daily index is merged as it grows, long after the lease moved: this is its figure.
    One document (a copy of an existing one) is added to each index so that there is something to merge;
    against tens of thousands of spans it is noise.
    """
    indices = _indices_with_documents(es_url, pattern)
    wait_for_leases(es_url, indices)
    for index in indices:
        hit = es.call(es_url, "GET", f"/{index}/_search?size=1")["hits"]["hits"][0]
        es.call(es_url, "POST", f"/{index}/_doc?refresh=true", hit["_source"])
    bytes_, _ = store_bytes(es_url, pattern)
    # The merged-away files go once no reader holds them: the refresh in store_bytes came before the merge.
    es.call(es_url, "POST", f"/{pattern}/_refresh?allow_no_indices=true")
    answer = es.call(es_url, "GET", f"/{pattern}/_stats/store?allow_no_indices=true")
    return int(answer["_all"]["primaries"].get("store", {}).get("size_in_bytes", bytes_))


def _indices_with_documents(es_url: str, pattern: str) -> list[str]:
    rows = es.call(es_url, "GET", f"/_cat/indices/{pattern}?format=json&h=index,docs.count&expand_wildcards=open")
    return [row["index"] for row in rows if int(row.get("docs.count") or 0) > 0]


def lease_passed(shard_stats: dict[str, Any]) -> bool:
    """Every retention lease of a shard retains only operations above its highest sequence number."""
    max_seq_no = int(shard_stats["seq_no"]["max_seq_no"])
    leases = shard_stats.get("retention_leases", {}).get("leases", [])
    return bool(leases) and all(int(lease["retaining_seq_no"]) > max_seq_no for lease in leases)


def wait_for_leases(es_url: str, indices: list[str]) -> float:
    began = time.monotonic()
    wanted = "indices.*.shards.*.seq_no,indices.*.shards.*.retention_leases"
    for index in indices:
        path = f"/{index}/_stats?level=shards&filter_path={wanted}"
        while True:
            shards = next(iter(es.call(es_url, "GET", path)["indices"].values()))["shards"]
            if all(lease_passed(copy) for copies in shards.values() for copy in copies):
                break
            if time.monotonic() - began > LEASE_TIMEOUT_S:
                raise RuntimeError(f"the retention lease of {index} did not pass max_seq_no in {LEASE_TIMEOUT_S:.0f}s")
            time.sleep(LEASE_POLL_S)
    return time.monotonic() - began


def run_once(
    system: System,
    corpus: Corpus,
    es_url: str,
    es_pid: int,
    shim_pid: int | None,
    repeat: int,
    options: Options,
) -> Run:
    system.drop()
    system.start()
    try:
        return _measured(system, corpus, es_url, es_pid, shim_pid, repeat, options)
    finally:
        system.stop()
        system.drop()


def _measured(
    system: System, corpus: Corpus, es_url: str, es_pid: int, shim_pid: int | None, repeat: int, options: Options
) -> Run:
    bodies = corpus.bodies[system.protocol]
    warm, _ = post(system, bodies.warmup, corpus.warmup_spans, options, f"{system.key} warm-up")
    warm_stored, _ = wait_searchable(es_url, system.span_pattern, sum(corpus.warmup_spans))
    time.sleep(SETTLE_S)

    def sample() -> Cpu:
        return Cpu(
            system.cpu_seconds(),
            procs.cpu_seconds(es_pid),
            procs.cpu_seconds(shim_pid) if shim_pid else 0.0,
            procs.own_cpu(),
            procs.machine_busy_seconds(),
        )

    before, began = sample(), time.perf_counter()
    result, acknowledged = post(system, bodies.measured, corpus.measured_spans, options, f"{system.key} #{repeat}")
    searchable, done = wait_searchable(es_url, system.span_pattern, warm_stored + corpus.spans)
    after, window = sample(), time.perf_counter() - began
    used = Cpu(*(a - b for a, b in zip(vars(after).values(), vars(before).values(), strict=True)))
    bytes_, _ = store_bytes(es_url, system.index_pattern)
    spans_docs = count(es_url, system.span_pattern)
    run = Run(
        system=system.key,
        repeat=repeat,
        sent=corpus.spans,
        acknowledged=acknowledged,
        stored=searchable - warm_stored,
        seconds=done - began,
        own_cpu_s=used.own,
        es_cpu_s=used.es,
        shim_cpu_s=used.shim,
        other_cpu_s=max(0.0, used.machine - used.own - used.es - used.shim - used.bench),
        store_bytes=bytes_,
        documents=spans_docs,
        peak_rss_mib=system.peak_rss_mib(),
        cpu_window_s=window,
        failures=(warm.failures + result.failures)[:5],
    )
    say(
        f"{system.label} #{repeat}: {run.spans_per_s:,.0f} spans/s, {run.stored:,} of {run.sent:,} stored "
        f"({run.acknowledged:,} acknowledged), own {run.us_per_span(run.own_cpu_s):.0f} µs/span, "
        f"Elasticsearch {run.us_per_span(run.es_cpu_s):.0f} µs/span, {run.bytes_per_span:,.0f} B/span"
    )
    run.queries = queries.measure(
        system.query_port(), system.dialect, corpus, options.seed + repeat, options.requests, options.warmup_requests
    )
    for kind, q in run.queries.items():
        wrong = f", {q.wrong} wrong: {q.first_problem[:200]}" if q.wrong else ""
        say(f"  {kind}: p50 {q.p50_ms:.1f} ms, p95 {q.p95_ms:.1f} ms{wrong}")
    # After the queries, which mostly cover the lease's 30 s renewal.
    run.settled_bytes = settled_store_bytes(es_url, system.index_pattern)
    say(f"  disk once settled: {run.settled_bytes_per_span:,.0f} B/span")
    return run
