"""Kafka mode's CPU per span, receiver and ingester apart, with the compiled core off and on (issue 14's
"≤ 60 µs for receiver + ingester" target): ``python -m bench.kafkacpu [--spans N] [--repeats R]``.

Each pass starts devstack.pipeline's topology (the service in Kafka mode, one ``python -m tracesearch
ingester``) on a topic, group and index prefix of its own, posts unmeasured warm-up bodies, then the
workload's OTLP bodies on 4 keep-alive connections, and counts utime + stime of the service's processes and
of the ingester from the first post until the index holds every span. Passes alternate
``TRACESEARCH_NATIVE=off`` and ``on``; the medians and the section go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import ingest, loadgen, procs, sections, stats, workload
from bench.cli import _es_url
from bench.config import Config
from bench.kafkamode import Stack, _wait_indexed, bootstrap
from bench.log import say

HEADING = "## Kafka mode: CPU per span, compiled core off and on"
MODES = ("off", "on")


@dataclass(frozen=True)
class Pass:
    native: str
    spans: int
    seconds: float
    service_us: float
    ingester_us: float

    @property
    def total_us(self) -> float:
        return self.service_us + self.ingester_us


def measure(es_url: str, work: workload.Workload, config: Config, native: str) -> Pass:
    prefix = f"bench-kafkacpu-{uuid.uuid4().hex[:8]}"
    stack = Stack(es_url, bootstrap(), prefix, config)
    stack.settings["TRACESEARCH_NATIVE"] = native
    try:
        port = stack.start(1).port

        def post(bodies: list[bytes]) -> loadgen.LoadResult:
            result = loadgen.post_all(port, "/v1/traces", ingest.OTLP_HEADERS, bodies, 4, ingest.check_otlp)
            if result.failures:
                raise RuntimeError(f"ingest failed: {result.failures[:3]}")
            return result

        post(work.warmup_otlp)
        _wait_indexed(es_url, prefix, work.warmup_spans, stack)
        time.sleep(3.0)
        service, ingester = stack.service, stack.ingesters[0]
        assert service is not None
        before = (procs.total_cpu(service.pids), procs.total_cpu([ingester.pid]))
        began = time.perf_counter()
        post(work.otlp)
        _wait_indexed(es_url, prefix, work.warmup_spans + work.spans, stack)
        seconds = time.perf_counter() - began
        after = (procs.total_cpu(service.pids), procs.total_cpu([ingester.pid]))
    finally:
        stack.stop()
    per_span = [(b - a) * 1e6 / work.spans for a, b in zip(before, after, strict=True)]
    return Pass(native, work.spans, seconds, per_span[0], per_span[1])


def section(passes: Sequence[Pass], command: str, commit: str) -> str:
    def med(mode: str, figure: str) -> float:
        return stats.median([getattr(p, figure) for p in passes if p.native == mode])

    rows = [
        f"| `TRACESEARCH_NATIVE={mode}` | {med(mode, 'service_us'):.1f} | {med(mode, 'ingester_us'):.1f} "
        f"| **{med(mode, 'total_us'):.1f}** |"
        for mode in MODES
        if any(p.native == mode for p in passes)
    ]
    each = ", ".join(f"{p.native} {p.service_us:.1f}+{p.ingester_us:.1f}" for p in passes)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            HEADING,
            "",
            f"Written by `{command}` on {when}, commit `{commit}`, not by `make bench`: the service in Kafka mode "
            "(2 workers x 8 threads) and one ingester process, each pass on a topic, group and prefix of its own, "
            f"{passes[0].spans:,} spans of the ingest workload after unmeasured warm-up bodies; utime + stime from "
            "the first post until the index held every span, per span. Passes alternate the compiled core off and "
            f"on (per pass, service+ingester µs/span: {each}). Target (issue 14): receiver + ingester ≤ 60 µs/span.",
            "",
            "| Compiled core | service (receiver) µs/span | ingester µs/span | together |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafkacpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2, help="passes per mode")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    es_url = _es_url()
    config = replace(Config(), spans=args.spans, warmup_batches=64)
    work = workload.prepare(config, f"bench-kafkacpu-{uuid.uuid4().hex[:6]}-bulk")
    passes = []
    for repeat in range(args.repeats):
        for mode in MODES:
            done = measure(es_url, work, config, mode)
            say(f"#{repeat + 1} native {mode}: service {done.service_us:.1f} + ingester {done.ingester_us:.1f} µs/span")
            passes.append(done)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = "python -m bench.kafkacpu " + " ".join(argv if argv is not None else sys.argv[1:])
    text = section(passes, command.strip(), commit)
    report = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(sections.replace_section(report, HEADING, text))
    say(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
