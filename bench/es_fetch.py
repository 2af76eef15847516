"""``python -m bench.es_fetch``: how fast the whole-trace fetch reads spans back, by span index variant,
when the spans of many traces arrived interleaved, as live traffic does (issue 14).

A trace's spans reach Elasticsearch as each span ends, mixed with every other trace in flight, so they
land far apart in a segment; the search fetch then reads each span's ``_source`` from a different
compressed block of stored fields. ``best_compression`` (zstd, blocks of up to 240 KB) made that random
access ~2.8x slower than LZ4's small blocks. This tool prices such changes on the same data.

It uses ``bench.es_cost``'s own node (port 9270; never the shared one). One corpus of ``bench.synth``
traces starting over ``--spread-s`` seconds, its spans sorted by end time, is indexed once per variant
into an index of that variant's templates (refreshed, then force-merged to one segment unless
``--no-merge``: a daily index is mostly merged by the time its traces are read). Then, in rounds over
the variants in alternating order, the queries: each fetches the spans of ``--traces`` random traces
with the reader's query (``compiler.spans_of_traces``) in each ``--fetch`` way: ``single``, one search of
all of them (the reader until the index sort), or ``each``, one search per trace in one ``_msearch``
(``EsSpanReader._spans_of`` now), timed on the client; every answer is checked to hold every span of
those traces. Measure under the bench lock.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from bench import es, es_cost, es_cost_measure, loadgen, procs, synth, workload
from bench.bench_node import node_settings
from bench.es_variants import UnknownVariant, Variant, apply_to_body, variant
from bench.ingest import BULK_HEADERS, BULK_PATH, check_bulk
from bench.log import say
from bench.stats import median, percentile
from devstack import elasticsearch
from tracesearch.model import Span
from tracesearch.storage.es import compiler
from tracesearch.storage.es.document import to_bulk_lines
from tracesearch.storage.es.span_reader import PAGE_SIZE
from tracesearch.storage.es.templates import load_templates

PREFIX = "esfetch"
# Same length for every variant (up to 100), so a body is renamed with a plain byte replace.
INDEX_TEMPLATE = PREFIX + "-span-v{:02d}"


@dataclass(frozen=True)
class Config:
    spans: int
    spread_s: int
    traces: int
    queries: int
    rounds: int
    merge: bool
    fetches: tuple[str, ...]
    seed: int
    variants: tuple[str, ...]
    port: int
    keep_es: bool


def parse_args(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.es_fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=300_000)
    parser.add_argument("--spread-s", type=int, default=600, help="traces start over this many seconds")
    parser.add_argument("--traces", type=int, default=20, help="traces fetched by each query")
    parser.add_argument("--queries", type=int, default=60, help="queries per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-merge", action="store_true", help="leave the segments as indexing left them")
    parser.add_argument(
        "--fetch",
        default=",".join(FETCHES),
        help="how the traces are fetched, each measured on every variant: 'single' (one search of all the "
        "traces, the reader until issue 14's sort), 'each' (one search per trace in one _msearch, the reader now)",
    )
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--variants", default="baseline,sort_trace", help="comma-separated; + combines")
    parser.add_argument("--port", type=int, default=es_cost.DEFAULT_PORT)
    parser.add_argument("--keep-es", action="store_true", help="leave the bench's node running")
    args = parser.parse_args(list(argv))
    names = tuple(dict.fromkeys(v.strip() for v in args.variants.split(",") if v.strip()))
    fetches = tuple(dict.fromkeys(f.strip() for f in args.fetch.split(",") if f.strip()))
    if not fetches or set(fetches) - set(FETCHES):
        parser.error(f"--fetch: choose from {', '.join(FETCHES)}")
    try:
        for name in names:
            variant(name)
    except UnknownVariant as exc:
        parser.error(str(exc))
    if not 0 < len(names) <= 100 or args.traces < 1 or args.queries < 1 or args.rounds < 1:
        parser.error("1 to 100 variants; --traces, --queries and --rounds at least 1")
    return Config(
        args.spans,
        args.spread_s,
        args.traces,
        args.queries,
        args.rounds,
        not args.no_merge,
        fetches,
        args.seed,
        names,
        args.port,
        args.keep_es,
    )


@dataclass(frozen=True)
class Corpus:
    bodies: list[bytes]  # for INDEX_TEMPLATE.format(0)
    spans_by_trace: dict[str, int]


def _body(index: str, spans: Sequence[Span]) -> bytes:
    """The writer's body for spans all going to ``index`` (one body carries each key set once)."""
    carried: set[tuple[int, str]] = set()
    return b"".join(to_bulk_lines(index, s, carried) for s in spans)


def build_corpus(config: Config) -> Corpus:
    factory = synth.TraceFactory(workload.INGEST_SERVICES, config.seed)
    start = es_cost.ANCHOR_NS
    spans = synth.arrival_order(synth.traces(factory, config.spans, start, start + config.spread_s * es_cost.NS_PER_S))
    counts: dict[str, int] = {}
    for span in spans:
        counts[span.trace_id] = counts.get(span.trace_id, 0) + 1
    index = INDEX_TEMPLATE.format(0)
    bodies = [_body(index, batch) for batch in synth.batches(iter(spans), 512)]
    return Corpus(bodies, counts)


@dataclass
class Loaded:
    change: Variant
    fetch: str
    index: str
    load_s: float
    es_cpu_s: float
    bytes_per_span: float
    segments: int
    latencies_ms: list[float]
    es_cpu_query_s: float = 0.0
    queries: int = 0


def load(target: es_cost_measure.Target, change: Variant, number: int, corpus: Corpus, merge: bool) -> Loaded:
    index = INDEX_TEMPLATE.format(number)
    es.delete_indices(target.es_url, index)
    es_cost_measure.install(target, change)
    es.call(target.es_url, "PUT", f"/{index}", {"settings": {"index.store.stats_refresh_interval": "0ms"}})
    old = INDEX_TEMPLATE.format(0).encode()
    bodies = [apply_to_body(b.replace(old, index.encode()), change) for b in corpus.bodies]
    host, port = es.host_port(target.es_url)
    cpu_before, began = procs.cpu_seconds(target.es_pid), time.monotonic()
    result = loadgen.post_all(port, BULK_PATH, BULK_HEADERS, bodies, 3, check_bulk, host)
    if result.failures:
        raise RuntimeError(f"{change.name}: {len(result.failures)} failed bulk requests: {result.failures[:3]}")
    es.call(target.es_url, "POST", f"/{index}/_refresh")
    if merge:
        es.call(target.es_url, "POST", f"/{index}/_forcemerge?max_num_segments=1", timeout=900)
        es.call(target.es_url, "POST", f"/{index}/_refresh")
    loaded_s, cpu = time.monotonic() - began, procs.cpu_seconds(target.es_pid) - cpu_before
    store = es.call(target.es_url, "GET", f"/{index}/_stats/store,segments?filter_path=_all.primaries")
    primaries = store["_all"]["primaries"]
    spans = sum(corpus.spans_by_trace.values())
    say(f"{change.name}: loaded into {index} in {loaded_s:.0f}s, {primaries['segments']['count']} segments")
    return Loaded(
        change,
        "",
        index,
        loaded_s,
        cpu,
        primaries["store"]["size_in_bytes"] / spans,
        int(primaries["segments"]["count"]),
        [],
    )


def fetch(es_url: str, index: str, trace_ids: list[str]) -> int:
    """The spans of these traces as ``SpanReader._spans_of`` reads them (no span cap): their count."""
    total, after = 0, None
    while True:
        body = compiler.spans_of_traces(trace_ids, PAGE_SIZE, after)
        hits = es.call(es_url, "POST", f"/{index}/_search", body)["hits"]["hits"]
        total += len(hits)
        if len(hits) < PAGE_SIZE:
            return total
        after = hits[-1]["sort"]


def fetch_each(es_url: str, index: str, trace_ids: list[str]) -> int:
    """The spans of these traces with one search per trace in one ``_msearch``: each search's hits are
    then one run of documents per segment when the index is sorted by trace id, which Elasticsearch
    reads with its sequential stored-fields reader (a compressed block decompressed once per run, not
    once per hit). No paging: the probe's traces are far under a page."""
    lines = []
    for trace_id in trace_ids:
        lines += [orjson.dumps({"index": index}), orjson.dumps(compiler.spans_of_traces([trace_id], PAGE_SIZE, None))]
    answers = es.call(es_url, "POST", "/_msearch", b"\n".join(lines) + b"\n")["responses"]
    for answer in answers:
        if "error" in answer:
            raise RuntimeError(f"_msearch: {answer['error']}")
    return sum(len(answer["hits"]["hits"]) for answer in answers)


FETCHES: dict[str, Callable[[str, str, list[str]], int]] = {"single": fetch, "each": fetch_each}


def query_round(target: es_cost_measure.Target, loaded: Loaded, corpus: Corpus, config: Config, seed: int) -> None:
    rng = random.Random(seed)
    ids = sorted(corpus.spans_by_trace)
    cpu_before = procs.cpu_seconds(target.es_pid)
    for _ in range(config.queries):
        chosen = rng.sample(ids, config.traces)
        began = time.perf_counter()
        got = FETCHES[loaded.fetch](target.es_url, loaded.index, chosen)
        loaded.latencies_ms.append((time.perf_counter() - began) * 1000)
        wanted = sum(corpus.spans_by_trace[t] for t in chosen)
        if got != wanted:
            raise RuntimeError(f"{loaded.change.name}: {got} spans fetched of {wanted}")
    loaded.es_cpu_query_s += procs.cpu_seconds(target.es_pid) - cpu_before
    loaded.queries += config.queries


def report(config: Config, corpus: Corpus, results: list[Loaded]) -> str:
    spans = sum(corpus.spans_by_trace.values())
    per_query = spans / len(corpus.spans_by_trace) * config.traces
    merged = "force-merged to 1 segment" if config.merge else "not merged"
    lines = [
        f"`python -m bench.es_fetch` — {spans:,} spans in {len(corpus.spans_by_trace):,} traces starting over "
        f"{config.spread_s} s, indexed in end-time order; {merged}; each query fetches {config.traces} random "
        f"traces (~{per_query:.0f} spans; fetch `single`: one search of them all, `each`: one search per trace in "
        f"one `_msearch`); {config.queries} queries x {config.rounds} rounds per variant, "
        "variants alternating",
        "",
        "| variant | fetch | fetch p50 ms | fetch p95 ms | ES CPU ms/query | load s | ES CPU load µs/span | "
        "store B/span | segments |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.change.name} | {r.fetch} | {median(r.latencies_ms):.1f} | {percentile(r.latencies_ms, 95):.1f} | "
            f"{r.es_cpu_query_s * 1000 / r.queries:.1f} | {r.load_s:.0f} | {r.es_cpu_s * 1e6 / spans:.0f} | "
            f"{r.bytes_per_span:.0f} | {r.segments} |"
        )
    return "\n".join(lines) + "\n"


def run(config: Config) -> str:
    settings = node_settings(config.port)
    say(f"building {config.spans:,} spans in arrival order")
    corpus = build_corpus(config)
    files = elasticsearch.dedicated_layout(settings, es_cost.NODE_FOLDER)
    say(f"starting the bench's own Elasticsearch on port {config.port} ({files.root})")
    node = elasticsearch.ensure_dedicated(settings, files)
    try:
        es_url = settings.es_local_url
        components, index_templates = load_templates(es.settings_for(es_url, PREFIX))
        target = es_cost_measure.Target(es_url, node.pid, PREFIX, "", components, index_templates)
        indices = [load(target, variant(name), n, corpus, config.merge) for n, name in enumerate(config.variants)]
        results = [dataclasses.replace(one, fetch=how, latencies_ms=[]) for one in indices for how in config.fetches]
        for loaded in results:  # warm caches and the JIT, unmeasured
            query_round(target, loaded, corpus, dataclasses.replace(config, queries=10), seed=0)
            loaded.latencies_ms.clear()
            loaded.es_cpu_query_s, loaded.queries = 0.0, 0
        for number in range(config.rounds):
            for loaded in results if number % 2 == 0 else results[::-1]:
                query_round(target, loaded, corpus, config, seed=config.seed + number)
                say(f"round {number + 1} {loaded.change.name} {loaded.fetch}: p50 {median(loaded.latencies_ms):.1f} ms")
        return report(config, corpus, results)
    finally:
        es.delete_indices(settings.es_local_url, f"{PREFIX}-*")
        if not config.keep_es:
            say("stopping the bench's Elasticsearch")
            elasticsearch.stop_node(node)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    print(run(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
