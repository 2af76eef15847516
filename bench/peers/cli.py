"""``python -m bench.peers`` (``make bench-peers``): fetch or build the peers, start a dedicated
Elasticsearch node, run every system in turn, write the section and plots.

Downloads and builds are cached in ``.devstack/`` (git-ignored): Zipkin's exec jar from Maven Central
(``devstack.lens``), Jaeger's binary built with ``go`` through the Go module proxy (``devstack.go_tools``),
the Elasticsearch zip the dev stack already uses. The node runs under ``.devstack/bench-peers-elasticsearch``
on its own port (never the dev stack's or another clone's) and is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from bench import es, loadgen, machine, sections, stats, workload
from bench.bench_node import node_settings
from bench.config import REPO
from bench.ingest import BULK_HEADERS, BULK_PATH, check_bulk
from bench.log import say
from bench.peers import corpus, measure, plots, report, systems
from devstack import elasticsearch, go_tools, java, launch, lens

ENV_SPANS = "TRACESEARCH_BENCH_PEERS_SPANS"
ENV_ES_PORT_PEERS = "TRACESEARCH_BENCH_PEERS_ES_PORT"
DEFAULT_SPANS = 50_000
DEFAULT_ES_PORT = 9250
NODE_FOLDER = "bench-peers-elasticsearch"
PLOTS_DIR = Path("docs") / "benchmarks"
PRIME_SPANS = 300_000  # es_cost saw the first 200k+ documents on a fresh node cost up to 2.5x
HOP_REQUESTS = 100
PRIME_PREFIX = "peers-prime"
SYSTEM_KEYS = ("tracesearch-otlp", "jaeger", "zipkin", "zipkin-throttled", "tracesearch-zipkin")


@dataclass(frozen=True)
class Config:
    spans: int
    warmup_spans: int
    repeats: int
    batch_spans: int
    concurrency: int
    requests: int
    warmup_requests: int
    seed: int
    es_port: int
    systems: tuple[str, ...]
    output: Path
    keep_es: bool
    workers: int
    threads: int
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return " ".join(("python -m bench.peers", *self.argv))


def parse_args(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    default_spans = int(os.environ.get(ENV_SPANS) or DEFAULT_SPANS)
    parser.add_argument("--spans", type=int, default=default_spans, help=f"measured spans per run ({ENV_SPANS})")
    parser.add_argument("--warmup-spans", type=int, default=5120)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-spans", type=int, default=512, help="spans per request (an SDK's default batch)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40, help="measured requests per query kind")
    parser.add_argument("--seed", type=int, default=20_261_205)
    parser.add_argument("--es-port", type=int, default=int(os.environ.get(ENV_ES_PORT_PEERS) or DEFAULT_ES_PORT))
    parser.add_argument("--systems", default=",".join(SYSTEM_KEYS), help=f"a subset of {','.join(SYSTEM_KEYS)}")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--keep-es", action="store_true", help="leave the dedicated node running")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of tracesearch")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    args = parser.parse_args(list(argv))
    chosen = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = set(chosen) - set(SYSTEM_KEYS)
    if unknown:
        parser.error(f"--systems: unknown {sorted(unknown)}; choose from {','.join(SYSTEM_KEYS)}")
    if args.spans < args.batch_spans or args.repeats < 1 or args.requests < 1:
        parser.error("--spans must be at least one batch, --repeats and --requests at least 1")
    return Config(
        spans=args.spans,
        warmup_spans=args.warmup_spans,
        repeats=args.repeats,
        batch_spans=args.batch_spans,
        concurrency=args.concurrency,
        requests=args.requests,
        warmup_requests=5,
        seed=args.seed,
        es_port=args.es_port,
        systems=tuple(k for k in SYSTEM_KEYS if k in chosen),
        output=args.output,
        keep_es=args.keep_es,
        workers=args.workers,
        threads=args.threads,
        argv=tuple(argv),
    )


def build_corpus(config: Config) -> corpus.Corpus:
    anchor = (time.time_ns() // corpus.NS_PER_MIN) * corpus.NS_PER_MIN
    total = config.spans + config.warmup_spans
    with tqdm(total=total, unit="span", unit_scale=True, desc="corpus", leave=False) as bar:
        built = corpus.build(config.spans, config.warmup_spans, config.seed, anchor, config.batch_spans, bar.update)
    say(
        f"corpus {built.digest()}: {built.spans:,} spans (+{sum(built.warmup_spans):,} warm-up), "
        f"OTLP bodies {built.mean_kib(corpus.OTLP):.0f} KiB, Zipkin JSON {built.mean_kib(corpus.ZIPKIN):.0f} KiB"
    )
    return built


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    settings = node_settings(config.es_port)
    needs_zipkin = any(k.startswith("zipkin") for k in config.systems)
    say("fetching or building the peers (cached in .devstack/ after the first run)")
    jar = lens.ensure_server_jar() if needs_zipkin else None
    jaeger_binary = (
        go_tools.build_module_program(systems.JAEGER_PACKAGE, systems.JAEGER_VERSION, "jaeger")
        if "jaeger" in config.systems
        else None
    )
    java_bin = java.find(17, settings, purpose=f"Zipkin {lens.VERSION}").path / "bin" / "java" if needs_zipkin else None
    built = build_corpus(config)
    files = elasticsearch.dedicated_layout(settings, NODE_FOLDER)
    say(f"starting the bench's own Elasticsearch {settings.es_version} on port {config.es_port} ({files.root})")
    node = elasticsearch.ensure_dedicated(settings, files)
    es_url = settings.es_local_url
    shim: Shim | None = None
    try:
        notes = []
        if needs_zipkin:
            shim = _start_shim(config.es_port)
            notes.append(_shim_note(config.es_port, shim.port))
        peers = _systems(config, es_url, settings.es_major, shim, jar, java_bin, jaeger_binary)
        runs = _run_all(config, peers, built, es_url, node.pid, shim.child.pid if shim else None)
        text = _write(config, peers, runs, built, es_url, java_bin, notes)
    finally:
        if shim is not None:
            shim.child.stop()
        if not config.keep_es:
            say("stopping the bench's Elasticsearch")
            elasticsearch.stop_node(node)
    print(text)
    return 0


@dataclass(frozen=True)
class Shim:
    child: launch.Child
    port: int


def _start_shim(es_port: int) -> Shim:
    port = launch.free_port()
    log = Path(f"/tmp/bench-peers-shim-{port}.log")
    command = launch.Command([sys.executable, "-m", "bench.peers.shim", str(port), str(es_port)], {})
    child = launch.Child(launch.spawn(command, log), log)

    def ready() -> bool:
        answer = launch.http_get(port, "/")
        return answer is not None and answer[0] == 200

    launch.await_ready(child, ready, 30.0, "the GET / shim")
    return Shim(child, port)


def _hop_ms(es_port: int, shim_port: int) -> tuple[float, float]:
    """Median ``GET /_cluster/health`` latency direct and through the proxy, requests interleaved."""
    direct = http.client.HTTPConnection("127.0.0.1", es_port, timeout=30)
    via = http.client.HTTPConnection("127.0.0.1", shim_port, timeout=30)
    times: dict[http.client.HTTPConnection, list[float]] = {direct: [], via: []}
    try:
        for i in range(2 * (HOP_REQUESTS + 10)):
            connection = (direct, via)[i % 2]
            began = time.perf_counter()
            connection.request("GET", "/_cluster/health")
            connection.getresponse().read()
            times[connection].append(time.perf_counter() - began)
    finally:
        direct.close()
        via.close()
    return stats.median(times[direct][10:]) * 1000, stats.median(times[via][10:]) * 1000


def _shim_note(es_port: int, shim_port: int) -> str:
    """What the proxy adds to each of Zipkin's requests, measured on the idle node before the run."""
    direct, via = _hop_ms(es_port, shim_port)
    added = f"adds {via - direct:.1f} ms to each request" if via - direct >= 0.1 else "adds no measurable latency"
    return (
        f"The proxy in front of Zipkin {added} (median of {HOP_REQUESTS} `GET /_cluster/health` on the idle "
        f"node, interleaved: {direct:.2f} ms direct, {via:.2f} ms through it)."
    )


def _systems(
    config: Config,
    es_url: str,
    es_major: int,
    shim: Shim | None,
    jar: Path | None,
    java_bin: Path | None,
    jaeger_binary: Path | None,
) -> list[systems.System]:
    out: list[systems.System] = []
    for key in config.systems:
        if key.startswith("tracesearch"):
            protocol = corpus.OTLP if key == "tracesearch-otlp" else corpus.ZIPKIN
            out.append(systems.Tracesearch(es_url, protocol, config.workers, config.threads))
        elif key == "jaeger" and jaeger_binary is not None:
            out.append(systems.Jaeger(es_url, jaeger_binary, es_major))
        elif jar is not None and java_bin is not None and shim is not None:
            shim_url = f"http://127.0.0.1:{shim.port}"
            out.append(systems.Zipkin(es_url, shim_url, jar, java_bin, throttle=key == "zipkin-throttled"))
    return out


def _prime(es_url: str, built: corpus.Corpus) -> None:
    """A fresh node spends its first few hundred thousand documents compiling its indexing code: that happens
    here, on tracesearch's documents of the corpus under prefixes deleted again (one per pass over the corpus,
    so every pass indexes rather than answering 409), not in the first system's figures."""
    measured = built.bodies[corpus.OTLP].measured
    passes = max(1, -(-PRIME_SPANS // max(built.spans, 1)))
    documents = passes * built.spans
    say(f"priming Elasticsearch (JIT) with {passes} pass(es) over the corpus, {documents:,} documents deleted again")
    host, port = es.host_port(es_url)
    for number in range(passes):
        prefix = f"{PRIME_PREFIX}{number}"
        es.install(es_url, prefix)
        bodies = [workload.bulk_body(b, prefix) for b in measured]
        failures = loadgen.post_all(port, BULK_PATH, BULK_HEADERS, bodies, 4, check_bulk, host).failures
        es.drop_prefix(es_url, prefix)
        if failures:
            raise RuntimeError(f"priming Elasticsearch failed: {failures[:3]}")


def _run_all(
    config: Config, peers: list[systems.System], built: corpus.Corpus, es_url: str, es_pid: int, shim_pid: int | None
) -> list[measure.Run]:
    options = measure.Options(config.concurrency, config.requests, config.warmup_requests, config.seed)
    _prime(es_url, built)
    runs = []
    for repeat in range(1, config.repeats + 1):
        order = peers if repeat % 2 else list(reversed(peers))
        say(f"repeat {repeat} of {config.repeats}: {', '.join(p.label for p in order)}")
        for system in order:
            runs.append(measure.run_once(system, built, es_url, es_pid, shim_pid, repeat, options))
    return runs


def _write(
    config: Config,
    peers: list[systems.System],
    runs: list[measure.Run],
    built: corpus.Corpus,
    es_url: str,
    java_bin: Path | None,
    notes: list[str],
) -> str:
    node = es.node(es_url)
    keys = [(p.key, p.label) for p in peers]
    plot_files = [
        ("ingest rate, CPU and disk per span", PLOTS_DIR / "peers-ingest.png"),
        ("query latency p95", PLOTS_DIR / "peers-queries.png"),
    ]
    # Beside the report they are linked from, by a path relative to it.
    plots.ingest_plot(keys, runs, config.output.parent / plot_files[0][1])
    plots.query_plot(keys, runs, config.output.parent / plot_files[1][1])
    facts = machine.describe_local()
    go_version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    meta = report.Meta(
        command=config.command,
        date=facts.date,
        commit=facts.commit,
        machine=f"{facts.nproc} CPUs ({facts.cpu_model})",
        load=f"load average {facts.load_1min:.2f} at the end",
        versions=[
            ("Elasticsearch", f"{node.version} (heap {node.heap_max_bytes // 2**20} MiB)"),
            ("Jaeger v2", f"module {systems.JAEGER_VERSION} (`cmd/jaeger`, built with {go_version or 'go'})"),
            (
                "Zipkin server",
                f"{lens.VERSION} (exec jar, `-Xmx{systems.ZIPKIN_HEAP}`, Java {_java_version(java_bin)})",
            ),
            ("tracesearch", f"this commit, gunicorn {config.workers} workers x {config.threads} threads, direct sink"),
            ("Python", platform.python_version()),
        ],
        corpus=(
            f"{built.spans:,} spans (+{sum(built.warmup_spans):,} warm-up) of traces of 5 to 40 spans over "
            f"{len(built.services)} services, from `bench/synth.py` with seed {built.seed} "
            f"(digest `{built.digest()}`): "
            "HTTP server/client and database semantic-convention attributes, ~15 per span, 8 resource attributes, "
            "an event on one span in ten, errors on one in 25; all in the hour before the run. Encoded once per "
            f"protocol in batches of {config.batch_spans}: OTLP protobuf ({built.mean_kib(corpus.OTLP):.0f} KiB a "
            f"request) for tracesearch and Jaeger, Zipkin v2 JSON ({built.mean_kib(corpus.ZIPKIN):.0f} KiB) for "
            "Zipkin and tracesearch's Zipkin endpoint."
        ),
        repeats=config.repeats,
        concurrency=config.concurrency,
        plots=[(title, str(path)) for title, path in plot_files],
        notes=notes,
    )
    text = report.section(meta, keys, runs)
    existing = config.output.read_text() if config.output.exists() else "# Benchmarks\n"
    config.output.write_text(sections.replace_section(existing, report.HEADING, text))
    say(f"section written to {config.output}, plots to {config.output.parent / PLOTS_DIR}/")
    return text


def _java_version(java_bin: Path | None) -> str:
    done = subprocess.run([str(java_bin or "java"), "-version"], capture_output=True, text=True, check=False)
    first = done.stderr.strip().splitlines()[:1]
    return first[0].split('"')[1] if first and '"' in first[0] else "17+"
