"""The BENCHMARKS.md section of ``python -m bench.growth``: query p50/p95 at each stored size, the
p95 growth from the smallest size to the largest, and what loading cost (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.querybench import KINDS, LIMIT
from bench.report import BY_ID_P95_TARGET_MS, SEARCH_P95_TARGET_MS, TEMPO_LABELS, TEMPO_TARGETS_MS

HEADING = "## Query latency as stored spans grow"
GROWTH_TARGET = 2.0  # issue 14: p95 at 10M spans at most twice p95 at 1M
LABELS = {
    "trace_by_id": "`GET /api/traces/{id}`, a 200-span trace (7-day lookback)",
    "search": f"`GET /api/traces` service + one tag + minDuration, 1 h, limit {LIMIT}",
    "services": "`GET /api/services` (7-day lookback)",
    "text_search": f"`GET /api/traces` service + `_text` word, 1 h, limit {LIMIT}",
    **TEMPO_LABELS,
}
P95_TARGETS_MS = {"trace_by_id": BY_ID_P95_TARGET_MS, "search": SEARCH_P95_TARGET_MS, **TEMPO_TARGETS_MS}


@dataclass(frozen=True)
class KindFigures:
    kind: str
    n: int
    p50_ms: float
    p95_ms: float
    # Traces, edges, series or values per answer: the answers were not empty at either size.
    mean_items: float


@dataclass(frozen=True)
class SizeFigures:
    spans: int
    new_spans: int
    load_s: float  # generating, encoding and posting this step's spans until a refresh counts them all
    settle_s: float  # then until no merge ran for a while
    disk_bytes: int  # the prefix's store size (spans and service-graph aggregates), primaries
    segments: int
    heap_used_bytes: int
    kinds: list[KindFigures] = field(default_factory=list)
    # Cores busy with processes other than the service, Elasticsearch and the bench while it measured.
    other_cores: float = 0.0
    # What answered the latency panel (X-Tracesearch-Metrics-Source) and the per-service rollups stored.
    latency_source: str = ""
    rollup_docs: int = 0
    graph_docs: int = 0  # service-graph aggregate documents (one per minute and edge, as a live process)

    @property
    def load_rate(self) -> float:
        return self.new_spans / self.load_s if self.load_s else 0.0

    def kind(self, name: str) -> KindFigures | None:
        return next((k for k in self.kinds if k.kind == name), None)


@dataclass(frozen=True)
class Facts:
    command: str
    date: str
    commit: str
    es_version: str
    heap: str
    window_start_ns: int
    window_end_ns: int
    requests: int
    warmup: int
    batch_spans: int
    concurrency: int
    target_spans: int
    cores: int
    load_1min: float


def sizes_from_json(saved: dict[str, Any]) -> tuple[Facts, list[SizeFigures]]:
    sizes = [SizeFigures(**{**s, "kinds": [KindFigures(**k) for k in s["kinds"]]}) for s in saved["sizes"]]
    return Facts(**saved["facts"]), sizes


def growth(first: float, last: float) -> float:
    return last / first if first > 0 else math.inf


def extrapolate(n_first: int, p_first: float, n_last: int, p_last: float, n_target: int) -> float:
    """p95 at ``n_target`` on the power law through the two measured points (p ∝ n^b, b ≥ 0: a p95 that
    fell between the two sizes is noise, not a trend, so it is carried flat). Two points fix one
    exponent, nothing more: a curve that bends upward later is not seen."""
    if n_last <= n_first or p_first <= 0 or p_last <= 0:
        raise ValueError("two increasing sizes with positive latencies are needed")
    exponent = max(0.0, math.log(p_last / p_first) / math.log(n_last / n_first))
    return p_last * float((n_target / n_last) ** exponent)


def _size_label(spans: int) -> str:
    if spans % 1_000_000 == 0:
        return f"{spans // 1_000_000}M"
    if spans % 1_000 == 0:
        return f"{spans // 1_000}k"
    return f"{spans:,}"


def _verdict(ratio: float) -> str:
    return "met" if ratio <= GROWTH_TARGET else "**missed**"


def latency_table(sizes: Sequence[SizeFigures], target_spans: int) -> list[str]:
    first, last = sizes[0], sizes[-1]
    short = last.spans < target_spans and len(sizes) > 1
    head = ["Request", *(f"p50 / p95 ms at {_size_label(s.spans)}" for s in sizes)]
    if len(sizes) > 1:
        head.append(f"p95 growth {_size_label(first.spans)} → {_size_label(last.spans)}")
    if short:
        head += [f"p95 at {_size_label(target_spans)}, extrapolated", f"growth to {_size_label(target_spans)}"]
    head.append(f"≤ {GROWTH_TARGET:.0f}x ({_size_label(target_spans)} vs {_size_label(first.spans)})")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in KINDS:
        at = [s.kind(name) for s in sizes]
        if any(k is None for k in at):
            continue
        measured = [k for k in at if k is not None]
        cells = [LABELS[name], *(f"{k.p50_ms:.1f} / {k.p95_ms:.1f}" for k in measured)]
        ratio = growth(measured[0].p95_ms, measured[-1].p95_ms)
        if len(sizes) > 1:
            cells.append(f"{ratio:.2f}x")
        if short:
            projected = extrapolate(first.spans, measured[0].p95_ms, last.spans, measured[-1].p95_ms, target_spans)
            ratio = growth(measured[0].p95_ms, projected)
            cells += [f"{projected:.1f}", f"{ratio:.2f}x"]
        verdict = _verdict(ratio) if len(sizes) > 1 else "one size only"
        if short:
            verdict += " (extrapolated)"
        cells.append(verdict)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def load_table(sizes: Sequence[SizeFigures]) -> list[str]:
    lines = [
        "| Stored spans | spans added | load s | spans/s (generate + encode + `_bulk`) | settle s | disk | "
        "B/span | segments | ES heap used | other processes' CPU while measuring |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in sizes:
        lines.append(
            f"| {s.spans:,} | {s.new_spans:,} | {s.load_s:.0f} | {s.load_rate:,.0f} | {s.settle_s:.0f} | "
            f"{s.disk_bytes / 2**30:.2f} GiB | {s.disk_bytes / s.spans:,.0f} | {s.segments} | "
            f"{s.heap_used_bytes / 2**20:,.0f} MiB | {s.other_cores:.2f} cores |"
        )
    return lines


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def section(facts: Facts, sizes: Sequence[SizeFigures], plot: str | None = None) -> str:
    if not sizes:
        raise ValueError("nothing measured")
    last = sizes[-1]
    reached = last.spans >= facts.target_spans
    lines = [
        HEADING,
        "",
        f"`{facts.command}` — {facts.date}, commit `{facts.commit}`; Elasticsearch {facts.es_version}, a node of "
        f"the bench's own (heap {facts.heap}, 1 shard, 0 replicas, the service's templates), on this "
        f"{facts.cores}-core machine shared with other sessions (load average {facts.load_1min:.2f} at the end).",
        "",
        f"One seeded `bench.synth` corpus (6 services, traces of 5-40 spans, plus 250 traces of 200 spans stored "
        f"first), start times uniform over 24 h ({_utc(facts.window_start_ns)} to {_utc(facts.window_end_ns)} UTC), "
        "so a 1 h search covers about 1/24 of the spans; posted as `_bulk` bodies from `bulk_body` (the writer's "
        f"documents and daily indices) of {facts.batch_spans} spans, {facts.concurrency} in flight, with the "
        "service-graph stage run over them as they were loaded. The corpus grows in steps (each step adds "
        "spans to the same indices); after each, a refresh counts every span, merges are left to settle (no "
        "force-merge: the service does not force-merge either), and the real service (gunicorn, direct mode) "
        f"answers {facts.requests} requests of each kind after {facts.warmup} discarded warm-up ones, the same "
        "requests at every size (same seed; ids from the stored 200-span traces), measured again (up to "
        "`--measure-tries`, 3 by default, the quietest kept) while other processes kept more than 0.25 cores "
        "busy. Before the first size, unmeasured requests of every kind warm the fresh node up (JIT). "
        "Requests as in §2.",
        "",
    ]
    if not reached:
        lines += [
            f"**Only {last.spans:,} spans fit the bench time here, not {facts.target_spans:,}.** The "
            f"{_size_label(facts.target_spans)} columns extrapolate each p95 on the power law through the "
            "smallest and largest measured sizes (p95 ∝ spans^b, b ≥ 0): an estimate, not a measurement.",
            "",
        ]
    lines += latency_table(sizes, facts.target_spans)
    lines += ["", *load_table(sizes)]
    answered = [s for s in sizes if s.latency_source]
    if answered:
        by_size = "; ".join(
            f"{_size_label(s.spans)}: `{s.latency_source}`, {s.rollup_docs:,} rollup documents, "
            f"{s.graph_docs:,} service-graph documents"
            for s in answered
        )
        lines += [
            "",
            "The latency panel's answer came from (`X-Tracesearch-Metrics-Source`: `span-metrics` = the per-service "
            "latency rollups, `spans` = a percentiles aggregation over the spans, both = the newest steps from the "
            f"spans) {by_size}. The loader writes the aggregates (service graph, span metrics, rollups) a live "
            "process would have written for the spans stored so far: one document per minute and key, rewritten "
            "when a later flush or step adds spans to its minute. Loading a day of history touches every minute "
            "in every flush, so writing each flush's documents would make their number grow with load time; a "
            "live deployment writes a few per minute, key and process, however many spans are stored.",
        ]
    if plot:
        lines += ["", f"![query p95 by stored spans]({plot})"]
    return "\n".join(lines) + "\n"
