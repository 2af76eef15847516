"""``python -m bench.es_cost`` (``make bench-es-cost``): what Elasticsearch spends per span, CPU and disk, for
the span index as tracesearch installs it and for variants of its mapping and document (issue 14).

It starts a node of its own through the dev stack (``.devstack/bench-es-cost-elasticsearch``, port 9270 by
default; never the shared one), builds one deterministic corpus of ``bench.synth`` spans into ``_bulk``
bodies with tracesearch's own document builder, then for each variant, in alternating order and
repeated: installs the variant's templates, indexes the same bodies from a few threads, and reads the
node's CPU time (utime + stime from /proc) from the first bulk until it is idle again (the final
refresh and every merge included). The first pass of each variant also force-merges, waits for the
peer-recovery retention lease, force-merges again and breaks the disk down per field.

Nothing here changes what the service installs: the variants are measured, not adopted.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import es, es_cost_measure, es_cost_report, machine, procs, sections, synth, workload
from bench.bench_node import node_settings
from bench.config import REPO
from bench.es_variants import BASELINE, UnknownVariant, Variant, apply_to_body, variant
from bench.log import say
from devstack import elasticsearch
from tracesearch.storage.es.document import bulk_body
from tracesearch.storage.es.indices import span_index_for
from tracesearch.storage.es.templates import load_templates

DEFAULT_PORT = 9270
ENV_PORT = "TRACESEARCH_BENCH_ES_COST_PORT"
NODE_FOLDER = "bench-es-cost-elasticsearch"
PREFIX = "escost"
NS_PER_S = 1_000_000_000
# A fixed minute, so the corpus (and its digest) is the same on every run and every machine.
ANCHOR_NS = int(datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()) * NS_PER_S
SPREAD_NS = 60 * NS_PER_S
DEFAULT_VARIANTS = (
    "baseline",
    "best_compression",
    "tags_no_dv",
    "no_text",
    "text_docs",
    "full_source",
    "auto_id",
    "ids_no_dv",
    "refresh_5s",
    "refresh_30s",
)
# The first passes after the node starts cost it up to 2.5x the CPU per span of later ones (JIT): in two
# runs that primed with 61k spans only, the first five variants measured high. Unmeasured passes first.
PRIME_PASSES = 2


@dataclass(frozen=True)
class Config:
    spans: int
    batch_spans: int
    concurrency: int
    repeats: int
    seed: int
    variants: tuple[str, ...]
    port: int
    output: Path
    json_output: Path | None
    from_json: tuple[Path, ...]
    keep_es: bool
    # None: every variant's disk is measured (on its first pass).
    disk_for: frozenset[str] | None
    prime_passes: int
    argv: tuple[str, ...]
    arrival: bool = False


def parse_args(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.es_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch-spans", type=int, default=512, help="spans per _bulk request")
    parser.add_argument("--concurrency", type=int, default=3, help="_bulk requests in flight")
    parser.add_argument("--repeats", type=int, default=2, help="CPU passes per variant (disk on the first)")
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help="comma-separated; join names with + to combine them (best_compression+full_source)",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get(ENV_PORT) or DEFAULT_PORT))
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=None, help="also write every pass's figures here")
    parser.add_argument("--keep-es", action="store_true", help="leave the bench's node running")
    parser.add_argument("--prime-passes", type=int, default=PRIME_PASSES, help="unmeasured passes first (JIT)")
    parser.add_argument(
        "--arrival-order", action="store_true", help="spans in end-time order, traces interleaved (live traffic)"
    )
    parser.add_argument("--no-disk", action="store_true", help="CPU passes only (no force-merge, no lease wait)")
    parser.add_argument("--disk-for", default="", help="measure the disk of these variants only (comma-separated)")
    parser.add_argument(
        "--from-json", default="", help="measure nothing: the section from these --json files (comma-separated)"
    )
    args = parser.parse_args(list(argv))
    names = tuple(dict.fromkeys(v.strip() for v in args.variants.split(",") if v.strip()))
    try:
        for name in names:
            variant(name)
    except UnknownVariant as exc:
        parser.error(str(exc))
    if BASELINE.name not in names:
        names = (BASELINE.name, *names)
    if args.spans < args.batch_spans or args.repeats < 1 or args.concurrency < 1:
        parser.error("--spans must be at least one batch, --repeats and --concurrency at least 1")
    return Config(
        args.spans,
        args.batch_spans,
        args.concurrency,
        args.repeats,
        args.seed,
        names,
        args.port,
        args.output,
        args.json,
        tuple(Path(p) for p in args.from_json.split(",") if p),
        args.keep_es,
        _disk_for(args.disk_for, args.no_disk),
        args.prime_passes,
        tuple(argv),
        args.arrival_order,
    )


def _disk_for(names: str, none: bool) -> frozenset[str] | None:
    if none:
        return frozenset()
    chosen = frozenset(n.strip() for n in names.split(",") if n.strip())
    return chosen or None


@dataclass(frozen=True)
class Corpus:
    bodies: list[bytes]
    spans: int
    digest: str

    @property
    def mean_document_bytes(self) -> float:
        """NDJSON bytes per span, the action line included."""
        return sum(map(len, self.bodies)) / self.spans


def build_corpus(spans: int, seed: int, batch_spans: int, index_prefix: str, arrival: bool = False) -> Corpus:
    """Each trace's spans together, or with ``arrival`` every span in end-time order, the traces in
    flight interleaved as live traffic sends them (what an index sorted by trace id has to reorder)."""
    factory = synth.TraceFactory(workload.INGEST_SERVICES, seed)
    traces = synth.traces(factory, spans, ANCHOR_NS, ANCHOR_NS + SPREAD_NS)
    ordered = synth.arrival_order(traces) if arrival else itertools.chain.from_iterable(traces)
    bodies = [bulk_body(index_prefix, batch) for batch in synth.batches(iter(ordered), batch_spans)]
    digest = hashlib.sha256(b"".join(bodies)).hexdigest()[:12]
    return Corpus(bodies, spans, digest)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the node


def run(config: Config) -> str:
    settings = node_settings(config.port)
    say(f"building {config.spans:,} spans into _bulk bodies of {config.batch_spans}")
    corpus = build_corpus(config.spans, config.seed, config.batch_spans, PREFIX, config.arrival)
    say(f"corpus {corpus.digest}: {len(corpus.bodies)} bodies, {corpus.mean_document_bytes:,.0f} B of NDJSON per span")
    files = elasticsearch.dedicated_layout(settings, NODE_FOLDER)
    say(f"starting the bench's own Elasticsearch {settings.es_version} on port {config.port} ({files.root})")
    node = elasticsearch.ensure_dedicated(settings, files)
    changes = [variant(name) for name in config.variants]
    passes: list[es_cost_measure.Pass] = []
    try:
        es_url = settings.es_local_url
        target = _target(es_url, node.pid)
        facts = es_cost_report.Facts(
            command=" ".join(["python -m bench.es_cost", *config.argv]),
            es_version=es.node(es_url).version,
            heap=settings.es_heap,
            spans=corpus.spans,
            digest=corpus.digest,
            ndjson_bytes_per_span=corpus.mean_document_bytes,
            batch_spans=config.batch_spans,
            concurrency=config.concurrency,
            repeats=config.repeats,
            idle_cores=_idle_cores(target),
            cores=os.cpu_count() or 1,
            commit=machine.head_commit(),
        )

        def record(measured: es_cost_measure.Pass) -> None:
            """Saved after every pass, so an interrupted run keeps what it measured (``--from-json``)."""
            passes.append(measured)
            if config.json_output is not None:
                saved = {
                    "facts": asdict(facts),
                    "variants": list(config.variants),
                    "passes": [asdict(p) for p in passes],
                }
                config.json_output.write_text(json.dumps(saved, indent=1))

        _measure_all(config, target, corpus, changes, record)
    finally:
        es.delete_indices(settings.es_local_url, f"{PREFIX}-*")
        if not config.keep_es:
            say("stopping the bench's Elasticsearch")
            elasticsearch.stop_node(node)
    return es_cost_report.section(facts, changes, passes)


def rerender(saved: Sequence[Path]) -> str:
    """The section again from the ``--json`` files of one or more runs, their passes pooled (the first
    run's facts; the commands of all), without measuring."""
    runs = [json.loads(path.read_text()) for path in saved]
    passes = [es_cost_measure.pass_from_json(p) for run in runs for p in run["passes"]]
    names = list(dict.fromkeys(name for run in runs for name in run["variants"]))
    most = max(sum(p.variant == name for p in passes) for name in names)
    facts = es_cost_report.Facts(
        **{**runs[0]["facts"], "command": "; ".join(run["facts"]["command"] for run in runs), "repeats": most}
    )
    return es_cost_report.section(facts, [variant(name) for name in names], passes)


def _target(es_url: str, es_pid: int) -> es_cost_measure.Target:
    components, index_templates = load_templates(es.settings_for(es_url, PREFIX))
    return es_cost_measure.Target(
        es_url, es_pid, PREFIX, span_index_for(PREFIX, ANCHOR_NS), components, index_templates
    )


def _measure_all(
    config: Config,
    target: es_cost_measure.Target,
    corpus: Corpus,
    changes: list[Variant],
    record: Callable[[es_cost_measure.Pass], None],
) -> None:
    # Variants that change the documents get their own copy of the bodies, made before anything is timed.
    bodies = {c.name: [apply_to_body(b, c) for b in corpus.bodies] for c in changes if c.changes_documents}
    for prime in range(config.prime_passes):
        say(f"priming Elasticsearch (JIT): unmeasured pass {prime + 1} of {config.prime_passes}")
        es_cost_measure.run_pass(target, BASELINE, corpus.bodies, corpus.spans, config.concurrency, with_disk=False)
    for repeat in range(config.repeats):
        order = changes if repeat % 2 == 0 else changes[::-1]
        for change in order:
            measured = es_cost_measure.run_pass(
                target,
                change,
                bodies.get(change.name, corpus.bodies),
                corpus.spans,
                config.concurrency,
                with_disk=repeat == 0 and (config.disk_for is None or change.name in config.disk_for),
            )
            say(
                f"repeat {repeat + 1} {change.name}: {measured.cpu_us_per_span:.1f} µs/span of Elasticsearch CPU, "
                f"{measured.post_s:.1f}s posting + {measured.quiet_s:.1f}s until idle"
            )
            record(measured)


def _idle_cores(target: es_cost_measure.Target, seconds: float = 5.0) -> float:
    """What the node uses doing nothing (stats, timers): part of every window, the same for every variant."""
    before = procs.cpu_seconds(target.es_pid)
    time.sleep(seconds)
    return (procs.cpu_seconds(target.es_pid) - before) / seconds


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    text = rerender(config.from_json) if config.from_json else run(config)
    existing = config.output.read_text() if config.output.exists() else "# Benchmarks\n"
    config.output.write_text(sections.replace_section(existing, es_cost_report.HEADING, text))
    say(f"section {es_cost_report.HEADING!r} written to {config.output}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
