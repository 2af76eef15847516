"""``python -m bench.growth`` (``make bench-growth``): query p50/p95 as the stored spans grow, 1M to 10M
by default, in one run (issue 14, item 4: p95 at 10M at most 2x p95 at 1M for every query of §2).

It starts an Elasticsearch node of its own through the dev stack (``.devstack/bench-growth-elasticsearch``,
port 9280 by default; never the shared one), loads one seeded ``bench.synth`` corpus through ``_bulk`` in
steps (``--sizes 1M,10M``: the first million, then nine more), and after each step lets merges settle and
times §2's requests against the real service (gunicorn, direct mode) pointed at that node. Figures are
saved after every step (``--json``), so a run stopped early keeps the sizes it measured; the
BENCHMARKS.md section is rewritten after every step too.

The node runs with a 1 GiB heap by default (``--heap``), twice the dev stack's 512 MiB: ten million spans
are loaded with four bulks in flight while merges run, and a smaller heap risks circuit-breaker
rejections in the middle of a 30-minute load; the index data itself lives off heap (page cache).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from bench import aggregates, dataset, es, latency, loadgen, machine, querybench, sections, service, synth
from bench.bench_node import node_settings
from bench.config import REPO
from bench.growth_plan import PlanError, Step, parse_sizes, plan, window
from bench.growth_report import HEADING, Facts, KindFigures, SizeFigures, section, sizes_from_json
from bench.ingest import BULK_HEADERS, BULK_PATH, check_bulk
from bench.log import say
from devstack import elasticsearch
from tracesearch.model import Span
from tracesearch.servicegraph.stage import StageConfig
from tracesearch.storage.es.document import bulk_body

DEFAULT_PORT = 9280
ENV_PORT = "TRACESEARCH_BENCH_GROWTH_PORT"
NODE_FOLDER = "bench-growth-elasticsearch"
PREFIX = "growth"
DEFAULT_HEAP = "1g"
BIG_TRACES = 250
BIG_TRACE_SPANS = 200
# Spans of a trace are generated together: a minute's window pairs them all and keeps memory bounded
# over ten million spans (the query data set's one-hour window would hold millions).
LOAD_STAGE = StageConfig(wait_s=60.0, max_pending=500_000, flush_interval_s=30.0, max_series=50_000)
# The node starts cold: a run without priming measured most requests slower at 1M than at 3M (JIT).
PRIME_REQUESTS = 60
LATENCY_PANEL = "latency_panel_24h"
# Other processes' cores above which a size's queries are measured again (the machine is shared).
BUSY_CORES = 0.25
SETTLE_QUIET_POLLS = 3
SETTLE_POLL_S = 2.0
SETTLE_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...]
    target_spans: int
    requests: int
    warmup: int
    batch_spans: int
    concurrency: int
    seed: int
    port: int
    heap: str
    workers: int
    threads: int
    output: Path
    json_output: Path
    plot: Path | None
    from_json: Path | None
    keep_es: bool
    budget_min: float | None
    measure_tries: int
    prime_requests: int
    argv: tuple[str, ...]


def parse_args(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M,10M", help="stored spans at which to measure, increasing")
    parser.add_argument("--target-spans", default="10M", help="the size the growth target is for (extrapolated to)")
    parser.add_argument("--requests", type=int, default=150, help="measured requests per kind and size")
    parser.add_argument("--warmup", type=int, default=15, help="discarded requests per kind and size")
    parser.add_argument("--batch-spans", type=int, default=512, help="spans per _bulk request")
    parser.add_argument("--concurrency", type=int, default=4, help="_bulk requests in flight")
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--port", type=int, default=int(os.environ.get(ENV_PORT) or DEFAULT_PORT))
    parser.add_argument("--heap", default=DEFAULT_HEAP, help="the bench node's JVM heap")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=Path("/tmp/tracesearch-bench-growth.json"))
    parser.add_argument("--plot", type=Path, default=REPO / "docs/benchmarks/growth-p95.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--from-json", type=Path, default=None, help="measure nothing: the section from --json")
    parser.add_argument("--keep-es", action="store_true", help="leave the bench's node and its data")
    parser.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="skip a step whose load, at the previous step's rate, would end past this many minutes of the run",
    )
    parser.add_argument(
        "--measure-tries",
        type=int,
        default=3,
        help=f"measure a size again while other processes keep more than {BUSY_CORES} cores busy, this often",
    )
    parser.add_argument(
        "--prime-requests",
        type=int,
        default=PRIME_REQUESTS,
        help="unmeasured requests of each kind before the first size's (0: none)",
    )
    args = parser.parse_args(list(argv))
    try:
        sizes = tuple(parse_sizes(args.sizes))
        (target,) = parse_sizes(args.target_spans)
        plan(sizes, BIG_TRACES, BIG_TRACE_SPANS)
    except (PlanError, ValueError) as exc:
        parser.error(str(exc))
    if args.requests < 20 or args.warmup < 0 or min(args.concurrency, args.batch_spans, args.measure_tries) < 1:
        parser.error("--requests must be at least 20 (for a p95); --concurrency, --batch-spans, --measure-tries 1")
    return Config(
        sizes,
        target,
        args.requests,
        args.warmup,
        args.batch_spans,
        args.concurrency,
        args.seed,
        args.port,
        args.heap,
        args.workers,
        args.threads,
        args.output,
        args.json,
        None if args.no_plot else args.plot,
        args.from_json,
        args.keep_es,
        args.budget_min,
        args.measure_tries,
        args.prime_requests,
        tuple(argv),
    )


def corpus(factory: synth.TraceFactory, data: dataset.Dataset, total: int) -> Iterator[Span]:
    """The 200-span traces first, then 5-40-span traces up to ``total`` spans, start times uniform in the window."""
    rng = factory.rng
    for trace_id in data.big_trace_ids:
        yield from factory.trace(data.big_trace_spans, rng.randrange(data.start_ns, data.end_ns), trace_id)
    rest = total - len(data.big_trace_ids) * data.big_trace_spans
    yield from itertools.chain.from_iterable(synth.traces(factory, rest, data.start_ns, data.end_ns))


def load_step(
    es_url: str, step: Step, index: int, spans: Iterator[Span], config: Config, live: aggregates.LiveAggregates
) -> float:
    """Post the step's spans (and their service-graph aggregates); seconds until a refresh counts them all."""
    host, port = es.host_port(es_url)
    began = time.monotonic()
    bar = tqdm(total=step.new, unit="span", unit_scale=True, desc=f"loading to {step.total:,}", mininterval=5)

    def bodies(recorder: aggregates.Recorder) -> Iterator[bytes]:
        for batch in synth.batches(itertools.islice(spans, step.new), config.batch_spans):
            recorder.observe(batch)
            bar.update(len(batch))
            yield bulk_body(PREFIX, batch)

    try:
        recorder = aggregates.Recorder(es_url, PREFIX, process=f"bench-growth-{index}", config=LOAD_STAGE, live=live)
        with recorder:
            result = loadgen.post_stream(
                port, BULK_PATH, BULK_HEADERS, bodies(recorder), config.concurrency, check_bulk, host
            )
    finally:
        bar.close()
    stored = es.count(es_url, PREFIX)
    if result.failures or stored != step.total:
        raise RuntimeError(f"loading to {step.total:,}: {stored:,} stored; {result.failures[:3]}")
    return time.monotonic() - began


def settle(es_url: str) -> float:
    """Seconds until the node ran no merge for a few polls in a row (or the timeout passed)."""
    began = time.monotonic()
    quiet = 0
    while quiet < SETTLE_QUIET_POLLS and time.monotonic() - began < SETTLE_TIMEOUT_S:
        answer = es.call(es_url, "GET", "/_nodes/_local/stats/indices/merge?filter_path=nodes.*.indices.merges.current")
        current = sum(n["indices"]["merges"]["current"] for n in answer["nodes"].values())
        quiet = quiet + 1 if current == 0 else 0
        time.sleep(SETTLE_POLL_S)
    return time.monotonic() - began


def store(es_url: str) -> tuple[int, int, int]:
    """(bytes on disk, segments) of the prefix's indices, and the node's heap in use."""
    stats = es.call(es_url, "GET", f"/{PREFIX}-*/_stats/store,segments?filter_path=_all.primaries")
    primaries = stats["_all"]["primaries"]
    jvm = es.call(es_url, "GET", "/_nodes/_local/stats/jvm?filter_path=nodes.*.jvm.mem.heap_used_in_bytes")
    heap = sum(n["jvm"]["mem"]["heap_used_in_bytes"] for n in jvm["nodes"].values())
    return int(primaries["store"]["size_in_bytes"]), int(primaries["segments"]["count"]), int(heap)


Measured = tuple[list[KindFigures], float, str]


def metrics_source(port: int, path: str) -> str:
    """Which store answered a TraceQL metrics request (``X-Tracesearch-Metrics-Source``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.getheader("X-Tracesearch-Metrics-Source") or "?"
    finally:
        connection.close()


def measure(es_url: str, es_pid: int, data: dataset.Dataset, config: Config) -> Measured:
    """§2's requests, one at a time, against the real service; the same requests at every size. Also the
    cores other processes kept busy meanwhile (the machine is shared: a slow size is flagged, not hidden),
    and which store answered the latency panel (the per-service rollups, the spans, or both)."""
    rng = random.Random(config.seed + 2)
    check = querybench.check_answers(data)
    running = service.start(es_url, PREFIX, config.workers, config.threads)
    watch = querybench.OtherCpu(running, es_pid)
    figures = []
    others = []
    try:
        for kind in querybench.KINDS:
            latency.get_each(running.port, querybench.request_paths(kind, config.warmup, rng, data))
            paths = querybench.request_paths(kind, config.requests, rng, data)
            watch.start()
            answers = latency.get_each(running.port, paths)
            others.append(watch.stop())
            items = []
            for path, answer in zip(paths, answers, strict=True):
                if answer.status != 200:
                    raise RuntimeError(f"GET {path}: HTTP {answer.status} {answer.body[:300]!r}")
                items.append(check(kind, json.loads(answer.body))[0])
            measured = querybench.Kind(kind, paths[0], [a.seconds for a in answers], items, items)
            figures.append(KindFigures(kind, len(answers), measured.p50_ms, measured.p95_ms, measured.mean_traces))
            say(f"{kind}: p50 {measured.p50_ms:.1f} ms, p95 {measured.p95_ms:.1f} ms over {len(answers)} requests")
        source = metrics_source(running.port, querybench.request_paths(LATENCY_PANEL, 1, rng, data)[0])
    finally:
        running.stop()
    return figures, sum(others) / len(others), source


def quietest(es_url: str, es_pid: int, data: dataset.Dataset, config: Config) -> Measured:
    """``measure`` again (up to ``--measure-tries`` times) while other processes kept more than
    ``BUSY_CORES`` busy, and keep the quietest try: one size measured while another session's tests
    ran would make every later size look faster than it."""
    tries = []
    for attempt in range(config.measure_tries):
        tries.append(measure(es_url, es_pid, data, config))
        if tries[-1][1] <= BUSY_CORES:
            break
        say(f"try {attempt + 1}: other processes kept {tries[-1][1]:.2f} cores busy")
    return min(tries, key=lambda t: t[1])


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the node


def run(config: Config) -> None:
    steps = plan(config.sizes, BIG_TRACES, BIG_TRACE_SPANS)
    start_ns, end_ns = window(time.time_ns())
    factory = synth.TraceFactory(synth.SERVICES, config.seed)
    big_ids = [factory.hex_id(128) for _ in range(BIG_TRACES)]
    data = dataset.Dataset(dataset.VERSION, config.sizes[-1], end_ns, big_ids, BIG_TRACE_SPANS, list(synth.SERVICES))
    assert data.start_ns == start_ns
    settings = node_settings(config.port, config.heap)
    files = elasticsearch.dedicated_layout(settings, NODE_FOLDER)
    say(f"starting the bench's own Elasticsearch {settings.es_version} on port {config.port}, heap {config.heap}")
    node = elasticsearch.ensure_dedicated(settings, files)
    es_url = settings.es_local_url
    measured: list[SizeFigures] = []
    try:
        es.drop_prefix(es_url, PREFIX)
        es.install(es_url, PREFIX)
        version = es.node(es_url).version
        spans = corpus(factory, data, config.sizes[-1])
        live = aggregates.LiveAggregates(PREFIX)  # one document per minute and key, as a live process
        began = time.monotonic()
        for index, step in enumerate(steps):
            if not _fits(config, began, measured, step):
                break
            say(f"step {index + 1} of {len(steps)}: {step.new:,} spans more, to {step.total:,}")
            load_s = load_step(es_url, step, index, spans, config, live)
            say(f"loaded {step.new:,} spans in {load_s:.0f}s ({step.new / load_s:,.0f} spans/s); merges settling")
            settle_s = settle(es_url)
            disk, segments, _ = store(es_url)
            say(f"settled in {settle_s:.0f}s: {disk / 2**30:.2f} GiB in {segments} segments; measuring queries")
            if index == 0 and config.prime_requests:
                say(f"priming the fresh node (JIT): {config.prime_requests} unmeasured requests of each kind")
                measure(es_url, node.pid, data, replace(config, requests=config.prime_requests))
            kinds, other_cores, source = quietest(es_url, node.pid, data, config)
            heap = store(es_url)[2]
            rollups = int(es.call(es_url, "GET", f"/{PREFIX}-servicelatency-*/_count?allow_no_indices=true")["count"])
            graph = int(es.call(es_url, "GET", f"/{PREFIX}-servicegraph-*/_count?allow_no_indices=true")["count"])
            say(f"latency panel answered by: {source}; {rollups:,} rollup documents, {graph:,} service-graph ones")
            measured.append(
                SizeFigures(
                    step.total,
                    step.new,
                    load_s,
                    settle_s,
                    disk,
                    segments,
                    heap,
                    kinds,
                    other_cores,
                    source,
                    rollups,
                    graph,
                )
            )
            _write(config, _facts(config, version, data), measured)
    finally:
        if not config.keep_es:
            es.drop_prefix(es_url, PREFIX)
            say("stopping the bench's Elasticsearch and deleting its data")
            elasticsearch.stop_node(node)
            shutil.rmtree(files.data, ignore_errors=True)


def _fits(config: Config, began: float, measured: list[SizeFigures], step: Step) -> bool:
    """Whether the step's load, at the rate the previous one achieved, ends within ``--budget-min``."""
    if config.budget_min is None or not measured:
        return True
    elapsed_min = (time.monotonic() - began) / 60
    needed_min = step.new / measured[-1].load_rate / 60
    if elapsed_min + needed_min <= config.budget_min:
        return True
    say(
        f"stopping at {measured[-1].spans:,} spans: loading {step.new:,} more would take ~{needed_min:.0f} min at "
        f"{measured[-1].load_rate:,.0f} spans/s, past the {config.budget_min:.0f}-minute budget"
    )
    return False


def _facts(config: Config, version: str, data: dataset.Dataset) -> Facts:
    local = machine.describe_local()
    return Facts(
        command=" ".join(["python -m bench.growth", *config.argv]),
        date=local.date,
        commit=local.commit + (" (working tree differs)" if local.modified_sources else ""),
        es_version=version,
        heap=config.heap,
        window_start_ns=data.start_ns,
        window_end_ns=data.end_ns,
        requests=config.requests,
        warmup=config.warmup,
        batch_spans=config.batch_spans,
        concurrency=config.concurrency,
        target_spans=config.target_spans,
        cores=local.nproc,
        load_1min=local.load_1min,
    )


def _write(config: Config, facts: Facts, measured: list[SizeFigures]) -> None:
    """Saved after every step, so a run stopped early keeps the sizes it measured."""
    config.json_output.write_text(json.dumps({"facts": asdict(facts), "sizes": [asdict(s) for s in measured]}))
    _render(config, facts, measured)


def _render(config: Config, facts: Facts, measured: list[SizeFigures]) -> None:
    plot = None
    if config.plot is not None and len(measured) > 1:
        from bench import growth_plot  # matplotlib only when there is something to draw

        growth_plot.p95_plot(measured, config.plot)
        plot = os.path.relpath(config.plot, config.output.parent)
    text = section(facts, measured, plot)
    existing = config.output.read_text() if config.output.exists() else "# Benchmarks\n"
    config.output.write_text(sections.replace_section(existing, HEADING, text))
    say(f"section {HEADING!r} written to {config.output}")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if config.from_json is not None:
        facts, measured = sizes_from_json(json.loads(config.from_json.read_text()))
        _render(config, facts, measured)
    else:
        run(config)
    print(sections.section(config.output.read_text(), HEADING))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
