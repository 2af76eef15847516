"""The peers section of BENCHMARKS.md: medians of the repeats per system, then every repeat (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.peers import queries
from bench.peers.measure import Run
from bench.stats import median

HEADING = "## Peers: tracesearch, Jaeger v2 and Zipkin on one Elasticsearch node"


@dataclass(frozen=True)
class Meta:
    """What the section says of the run besides its figures."""

    command: str
    date: str
    commit: str
    machine: str
    load: str
    versions: list[tuple[str, str]]
    corpus: str
    repeats: int
    concurrency: int
    plots: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def _runs_of(runs: Sequence[Run], key: str) -> list[Run]:
    return [r for r in runs if r.system == key]


def _med(runs: Sequence[Run], value: Callable[[Run], float]) -> float:
    return median([value(r) for r in runs])


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _spread(runs: Sequence[Run], value: Callable[[Run], int]) -> str:
    """The median share of the spans sent, with the range when the repeats differ."""
    shares = sorted(value(r) / r.sent for r in runs)
    middle = f"{100 * median(shares):.1f}%"
    return middle if shares[0] == shares[-1] else f"{middle} ({100 * shares[0]:.0f} to {100 * shares[-1]:.0f}%)"


def ingest_rows(systems: Sequence[tuple[str, str]], runs: Sequence[Run]) -> list[str]:
    by = {key: _runs_of(runs, key) for key, _ in systems}
    present = [(key, label) for key, label in systems if by[key]]
    rows: list[tuple[str, Callable[[list[Run]], str]]] = [
        ("spans/s until every span is searchable", lambda rs: f"{_med(rs, lambda r: r.spans_per_s):,.0f}"),
        ("spans acknowledged / sent", lambda rs: _spread(rs, lambda r: r.acknowledged)),
        ("spans stored / sent", lambda rs: _spread(rs, lambda r: r.stored)),
        ("the system's own CPU, µs/span", lambda rs: f"{_med(rs, lambda r: r.us_per_span(r.own_cpu_s)):,.0f}"),
        ("Elasticsearch's CPU, µs/span", lambda rs: f"{_med(rs, lambda r: r.us_per_span(r.es_cpu_s)):,.0f}"),
        (
            "both together, µs/span",
            lambda rs: f"{_med(rs, lambda r: r.us_per_span(r.own_cpu_s + r.es_cpu_s)):,.0f}",
        ),
        ("disk right after force-merge, bytes/span", lambda rs: f"{_med(rs, lambda r: r.bytes_per_span):,.0f}"),
        (
            "disk once settled (merged again after the retention lease), bytes/span",
            lambda rs: f"{_med(rs, lambda r: r.settled_bytes_per_span):,.0f}",
        ),
        ("resident memory of its processes, peak", lambda rs: f"{max(r.peak_rss_mib for r in rs):,.0f} MiB"),
        ("other processes on the machine, cores", lambda rs: f"{_med(rs, lambda r: r.other_cores):.2f}"),
    ]
    lines = [
        f"| median of {_repeats(max(len(by[k]) for k, _ in present))} | "
        + " | ".join(label for _, label in present)
        + " |",
        "| --- |" + " --- |" * len(present),
    ]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(by[key]) for key, _ in present) + " |")
    return lines


def _repeats(n: int) -> str:
    return f"{n} repeats" if n > 1 else "1 repeat"


def query_rows(systems: Sequence[tuple[str, str]], runs: Sequence[Run]) -> list[str]:
    present = [(key, label) for key, label in systems if any(r.queries for r in _runs_of(runs, key))]
    lines = [
        "| p50 / p95, ms | " + " | ".join(label for _, label in present) + " |",
        "| --- |" + " --- |" * len(present),
    ]
    for kind in queries.KINDS:
        cells = []
        for key, _ in present:
            stats = [r.queries[kind] for r in _runs_of(runs, key) if kind in r.queries]
            p50, p95 = median([s.p50_ms for s in stats]), median([s.p95_ms for s in stats])
            wrong = sum(s.wrong for s in stats)
            items = median([s.mean_items for s in stats])
            note = f"; **{wrong} of {sum(s.requests for s in stats)} wrong**" if wrong else ""
            cells.append(f"{p50:.1f} / {p95:.1f} ({_items(kind, items)}{note})")
        lines.append(f"| {queries.LABELS[kind]} | " + " | ".join(cells) + " |")
    return lines


def wrong_answers(labels: dict[str, str], runs: Sequence[Run]) -> list[str]:
    """The first wrong answer of each kind in each repeat: what a peer answered instead."""
    return [
        f"- {labels.get(r.system, r.system)} #{r.repeat}, {queries.LABELS[kind]}: {q.wrong} wrong, first "
        f"`{q.first_problem[:300]}`"
        for r in runs
        for kind, q in r.queries.items()
        if q.wrong
    ]


def _items(kind: str, items: float) -> str:
    unit = {"trace_by_id": "spans", "search": "traces", "services": "services", "dependencies": "links"}[kind]
    return f"{items:,.1f} {unit}"


def repeat_rows(labels: dict[str, str], runs: Sequence[Run]) -> list[str]:
    lines = [
        "| repeat | system | spans/s | acknowledged | stored | own µs/span | Elasticsearch µs/span | shim µs/span "
        "| bytes/span | settled bytes/span | other cores |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(runs, key=lambda r: r.repeat):
        lines.append(
            f"| {r.repeat} | {labels.get(r.system, r.system)} | {r.spans_per_s:,.0f} | {r.acknowledged:,} "
            f"| {r.stored:,} ({_share(r.stored, r.sent)}) | {r.us_per_span(r.own_cpu_s):,.0f} "
            f"| {r.us_per_span(r.es_cpu_s):,.0f} | {r.us_per_span(r.shim_cpu_s):,.0f} | {r.bytes_per_span:,.0f} "
            f"| {r.settled_bytes_per_span:,.0f} | {r.other_cores:.2f} |"
        )
    return lines


def section(meta: Meta, systems: Sequence[tuple[str, str]], runs: Sequence[Run]) -> str:
    labels = dict(systems)
    versions = "; ".join(f"{name} {version}" for name, version in meta.versions)
    lines = [
        HEADING,
        "",
        f"Written by `make bench-peers` (`{meta.command}`) on {meta.date}, commit `{meta.commit}`; "
        f"{meta.machine}, {meta.load}. "
        f"Versions: {versions}.",
        "",
        f"- Corpus: {meta.corpus}",
        f"- Each system in turn, {_repeats(meta.repeats)} in alternating order, each from a freshly started "
        "process and empty indices of its own prefix on one dedicated Elasticsearch node (1 shard, 0 replicas; "
        "Lucene through mmap, Elasticsearch's default: the dev stack's nodes turn it off), "
        "primed first with ~300k of tracesearch's documents under prefixes deleted again (a fresh node's "
        "first few hundred thousand documents cost it up to 2.5x, JIT). "
        f"Warm-up traces first (not counted), then the corpus over {meta.concurrency} keep-alive connections. "
        "*Until searchable*: from the first request to the moment `_count` on the system's span indices "
        "(no refresh forced) shows every span; when the count stops short and does not move for 15 s, the spans "
        "missing are lost, and the rate counts the stored ones up to their last.",
        "- CPU is utime + stime from `/proc` over that phase, per span *sent*: the system's own processes "
        "(gunicorn master and workers; Jaeger's process; Zipkin's JVM) and Elasticsearch's JVM. Zipkin reaches "
        "Elasticsearch through a small Python proxy answering the `GET /` this minimal Elasticsearch lacks; its "
        "CPU is in the per-repeat table, not in Zipkin's. Disk: primary store of every index of the system's "
        "prefix after `_forcemerge?max_num_segments=1`, per span stored (warm-up included); *once settled*: "
        "again after every shard's peer-recovery retention lease passed its last operation (renewed every 30 s) "
        "and one more document made a merge happen. An index whose `_source` leaves fields out (tracesearch's) "
        "keeps each original as `_recovery_source` until then, so right after a burst it counts twice; a daily "
        "index merged as it grows is at the settled figure. Jaeger and Zipkin store their whole source: the two "
        "figures match for them.",
        "- Queries through each system's own API after the merge, one at a time on a keep-alive connection: "
        "tracesearch and Jaeger v2 the Jaeger query API, Zipkin its v2 API. Cells: p50 / p95 (mean items per "
        "answer). Jaeger and Zipkin fill dependency links with a separate batch job (Spark), not run here, so "
        "their dependencies answers are empty; tracesearch's come from its live service graph.",
        *(f"- {note}" for note in meta.notes),
        "- The machine was shared with other work during the run (see the *other processes* row): read the "
        "figures as ratios between systems of the same run, not as absolutes.",
        "",
        "### Ingest and cost",
        "",
        *ingest_rows(systems, runs),
        "",
        "### Query latency",
        "",
        *query_rows(systems, runs),
        "",
    ]
    wrong = wrong_answers(labels, runs)
    if wrong:
        lines += ["Wrong answers:", "", *wrong, ""]
    for title, path in meta.plots:
        lines += [f"![{title}]({path})", ""]
    lines += ["### Every repeat", "", *repeat_rows(labels, runs), ""]
    failures = [f"{labels.get(r.system, r.system)} #{r.repeat}: {f}" for r in runs for f in r.failures]
    if failures:
        lines += ["Failed requests (first five per repeat):", "", *(f"- {f[:300]}" for f in failures), ""]
    return "\n".join(lines)
