"""``python -m bench.cpuprofile``: where the service's own CPU goes during direct-mode ingest, by function.

Starts the service as ``make bench`` does (direct mode, 2 workers x 8 threads, the shared Elasticsearch),
warms it up until its service-graph series exist, then posts the ingest workload while ``py-spy record
--gil`` samples each worker. Sampling only the thread that holds the GIL counts Python's CPU and not the
threads waiting for it, for the CPU (2 busy cores) or for I/O. Each category's share of the samples is
scaled to the workers' measured user CPU per span (utime); kernel time (stime: sockets, page faults) is
shown apart. ``--compare DIR`` profiles another source tree (``git worktree add /tmp/base main``) in
alternation with this one and writes before/after columns; ``--native-compare`` profiles this tree with
the compiled core off (before) and on (after), in alternation. The subsection goes into BENCHMARKS.md, at the
end of section 1, where ``make bench`` keeps it (``keep``). Needs py-spy (a dev dependency) and ptrace.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench import es, hotpath, ingest, loadgen, procs, service, stats, workload
from bench.config import DEFAULT_OUTPUT, REPO, Config

HEADING = "### Where the service's CPU goes, by function (py-spy)"
SAMPLE_HZ = 250
# Enough warm-up for every service-graph series to exist (each new one creates Prometheus histogram
# children once per worker) and one flush to have run: the profile is the steady state.
WARMUP_BATCHES = 64
SETTLE_S = 7.0
# A frame naming the category anywhere in the stack, first rule first: the flush thread and the
# observer before what they call, decode before the document it feeds.
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "service-graph flush thread (expiry, storage lookups, aggregate documents, Prometheus series)",
        ("ServiceGraphStage._run",),
    ),
    ("service-graph observer (pairing, per-minute aggregates)", ("ServiceGraphStage.observe",)),
    ("decode: admission (validate, trim to limits)", ("admit (tracesearch/admission",)),
    (
        "decode: protobuf parse + model spans",
        ("decode_export_request (", "decode_resource_spans", "decode_natively (", "decode_in_python ("),
    ),
    ("document: search terms (tags, numeric tags, text)", ("SearchTerms.",)),
    ("document: stored source and fields", ("to_document (",)),
    (
        "bulk body: orjson, action line, index name, join",
        (
            "EsSpanWriter._write_once.<locals>.<genexpr>",
            "to_bulk_lines",
            "bulk_body (",
            "_bulk_lines (",
            "storage/es/native_body.py",  # the compiled core's call (py-spy sees its Python caller)
        ),
    ),
    (
        "Elasticsearch client + urllib3 (send the bulk body, read the answer)",
        ("Elasticsearch.bulk", "_rewrite_parameters", "elastic_transport", "urllib3"),
    ),
    (
        "request handler rest: freeing the decoded batch, pipeline, writer",
        ("export_traces", "flask_smorest/response.py", "EsSpanWriter", "StorePipeline", "DirectSink", "receive ("),
    ),
    ("Flask, werkzeug, flask-smorest dispatch", ("flask/", "werkzeug/", "flask_smorest/")),
    ("gunicorn (parse, respond, event loop) and its thread pool", ("gunicorn/", "concurrent/futures")),
)
OTHER = "other"


@dataclass
class Run:
    """One measured pass: CPU of master and workers per span, and the samples by category."""

    spans: int
    seconds: float
    utime_us: float
    stime_us: float
    samples: dict[str, int]
    # bench/hotpath.py's per-step timings of the same tree, after the service stopped (µs per span).
    steps: dict[str, float]

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    def us(self, category: str) -> float:
        return self.utime_us * self.samples.get(category, 0) / max(1, self.total)


def categorise(stack: Sequence[str]) -> str:
    for name, patterns in RULES:
        if any(pattern in frame for frame in stack for pattern in patterns):
            return name
    return OTHER


def read_samples(folder: Path) -> dict[str, int]:
    """py-spy's raw output (collapsed stacks, ``frame;frame;... count``) of every worker, by category."""
    found: Counter[str] = Counter()
    for path in folder.glob("*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                found[categorise(stack.split(";"))] += int(count)
    return dict(found)


def _times(pids: Sequence[int]) -> tuple[float, float]:
    utime = stime = 0.0
    for pid in pids:
        fields = procs._stat_fields(pid)
        if fields is not None:
            utime += int(fields[11]) / procs.TICKS_PER_S
            stime += int(fields[12]) / procs.TICKS_PER_S
    return utime, stime


def measure(spans: int, folder: Path, es_url: str) -> Run:
    """In this interpreter's source tree: one service, one profiled pass (see the module)."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-cpuprofile-{run_id}"
    work = workload.prepare(replace(Config(), spans=spans, warmup_batches=WARMUP_BATCHES), f"{prefix}-bulk")
    running = service.start(es_url, prefix, 2, 8)
    try:

        def post(bodies: list[bytes]) -> loadgen.LoadResult:
            result = loadgen.post_all(running.port, "/v1/traces", ingest.OTLP_HEADERS, bodies, 4, ingest.check_otlp)
            if result.failures:
                raise RuntimeError(f"ingest failed: {result.failures[:3]}")
            return result

        post(work.warmup_otlp)
        time.sleep(SETTLE_S)
        spy = Path(sys.executable).with_name("py-spy")
        samplers = [
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--gil",
                    "--nonblocking",
                    "-r",
                    str(SAMPLE_HZ),
                    "-f",
                    "raw",
                    "-o",
                    str(folder / f"{pid}.txt"),
                    "-p",
                    str(pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in running.workers
        ]
        time.sleep(1.5)  # py-spy attaches
        before = _times(running.pids)
        result = post(work.otlp)
        after = _times(running.pids)
        for sampler in samplers:
            sampler.send_signal(2)  # SIGINT: py-spy writes what it has
        for sampler in samplers:
            sampler.wait(timeout=60)
    finally:
        running.stop()
        es.drop_prefix(es_url, prefix)
    hot = hotpath.measure(work.otlp[: ingest.HOTPATH_BODIES])
    steps = {name: value for name, value in vars(hot).items() if name.endswith("_us")}
    return Run(
        spans,
        result.seconds,
        (after[0] - before[0]) * 1e6 / spans,
        (after[1] - before[1]) * 1e6 / spans,
        read_samples(folder),
        steps,
    )


def _measure_in(tree: Path, spans: int, es_url: str, native: str | None = None) -> Run:
    """``measure`` in a child process running ``tree``'s code (its service too: cwd and PYTHONPATH),
    with TRACESEARCH_NATIVE=``native`` where given."""
    with tempfile.TemporaryDirectory(prefix="cpuprofile-") as folder:
        env = {**os.environ, "PYTHONPATH": str(tree), "TRACESEARCH_ES_URL": es_url}
        if native is not None:
            env["TRACESEARCH_NATIVE"] = native
        # This file run by path (the other tree may not have it), importing that tree's bench package.
        argv = ["bench.cpuprofile", "--measure", folder, "--spans", str(spans)]
        code = f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path({str(Path(__file__))!r}, run_name='__main__')"
        subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, check=True)
        data = json.loads((Path(folder) / "run.json").read_text())
    return Run(**data)


def _median_run(runs: list[Run]) -> Run:
    """Per-span figures as medians of the runs; samples pooled."""
    pooled: Counter[str] = Counter()
    for run in runs:
        pooled.update(run.samples)
    steps = {name: stats.median([r.steps[name] for r in runs if name in r.steps]) for name in runs[0].steps}
    return Run(
        sum(r.spans for r in runs),
        sum(r.seconds for r in runs),
        stats.median([r.utime_us for r in runs]),
        stats.median([r.stime_us for r in runs]),
        dict(pooled),
        steps,
    )


def section(
    after: Run,
    before: Run | None,
    spans: int,
    repeats: int,
    command: str,
    before_name: str = "the `--compare` tree",
    native_compare: bool = False,
    after_name: str = "this tree",
) -> str:
    runs = [before, after] if before is not None else [after]
    head = "| Where | before µs/span | after µs/span |" if before else "| Where | µs/span |"
    lines = [
        HEADING,
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d', time.gmtime())}, not by `make bench`: the "
        f"service as above (direct mode, 2 workers x 8 threads, 4 connections), {repeats} profiled pass(es) "
        f"of {spans:,} spans per column after a warm-up of {WARMUP_BATCHES} batches, each worker sampled by "
        f"`py-spy record --gil` at {SAMPLE_HZ} Hz. A category's share of the samples is scaled to the "
        "workers' user CPU per span (median of the passes); kernel time is its own row. "
        + (f"*Before* is {before_name}, run in alternation with *after* ({after_name}). " if before else "")
        + "The machine is shared: compare columns as ratios, and the total with section 1's figure.",
        "",
        head,
        "| --- | --- | --- |" if before else "| --- | --- |",
    ]
    for name in [rule[0] for rule in RULES] + [OTHER]:
        lines.append(f"| {name} | " + " | ".join(f"{r.us(name):.1f}" for r in runs) + " |")
    lines.append("| kernel (stime): sockets, page faults | " + " | ".join(f"{r.stime_us:.1f}" for r in runs) + " |")
    lines.append(
        "| **service CPU per span (utime + stime)** | "
        + " | ".join(f"**{r.utime_us + r.stime_us:.1f}**" for r in runs)
        + " |"
    )
    lines.append("| GIL samples | " + " | ".join(f"{r.total:,}" for r in runs) + " |")
    lines += ["", *_steps_table(runs), "", compiled_core(after, before, native_compare)]
    return "\n".join(lines) + "\n"


# What the compiled core (native/) replaces: the protobuf parse and the model spans, the document and
# the bulk body (admission stays in Python, called by the core's decoder).
NATIVE_REPLACES = (
    "decode: protobuf parse + model spans",
    "document: search terms (tags, numeric tags, text)",
    "document: stored source and fields",
    "bulk body: orjson, action line, index name, join",
)
DIRECT_TARGET_US = 35.0


def compiled_core(after: Run, before: Run | None, native_compare: bool) -> str:
    """What the compiled core does, and (when *before* is the same tree without it) what it saved."""
    total = after.utime_us + after.stime_us
    text = (
        "**The compiled core (built).** `native/` (Rust through PyO3/maturin, abi3; README, *The compiled core*) "
        "decodes OTLP protobuf into the model spans (admission's checks, limits and warnings stay in Python, "
        "called in the Python decoder's order) and builds the `_bulk` body from the model spans, byte for byte "
        "what `document.bulk_body` returns; the Python decoder and document builder stay the reference "
        "(differential tests: `tests/unit/codecs/test_otlp_native.py`, `tests/unit/storage/test_native_body.py`), "
        "and the service uses the core where it is installed (`TRACESEARCH_NATIVE=auto`). "
    )
    if native_compare and before is not None:
        old = sum(before.us(name) for name in NATIVE_REPLACES)
        new = sum(after.us(name) for name in NATIVE_REPLACES)
        was = before.utime_us + before.stime_us
        text += (
            f"Measured above: the service's CPU **{was:.1f} → {total:.1f} µs/span** ({total - was:+.1f}; target "
            f"≤ {DIRECT_TARGET_US:.0f}), the parse, document and bulk-body rows {old:.1f} → {new:.1f} µs/span. "
        )
    rest = total - sum(after.us(name) for name in NATIVE_REPLACES)
    text += (
        f"What is left ({rest:.1f} µs/span besides the core's rows) is Python and the kernel: the service-graph "
        "observer and its flush thread, admission, the request handler and freeing the batch, the Elasticsearch "
        "client, Flask and gunicorn, and the socket work. The next candidates for the core are the observer's "
        "pairing and aggregates and admission; below that, a request could go from protobuf bytes to the bulk "
        "body without Python spans at all."
    )
    return text


STEPS = {
    "decode_us": "decode OTLP protobuf + validate (`decode_export_request`)",
    "to_document_us": "build the document (`to_document`)",
    "dumps_us": "serialise action + document (`orjson.dumps`)",
    "bulk_body_us": "the pure-Python bulk body (`document.bulk_body`)",
    "native_body_us": "the compiled core's bulk body (`tracesearch_native`)",
    "observe_us": "the service-graph observer (pairing + aggregates)",
}


def _steps_table(runs: list[Run]) -> list[str]:
    """bench/hotpath.py per tree: one thread, no I/O, the same spans (a tree without a step: n/a)."""
    lines = [
        "The same trees' per-step timings in one process (`bench/hotpath.py`: one thread, no I/O, "
        f"{ingest.HOTPATH_BODIES} of the same bodies, median of the passes):",
        "",
        "| Step | " + " | ".join(("before µs/span", "after µs/span") if len(runs) == 2 else ("µs/span",)) + " |",
        "| --- | " + " | ".join("---" for _ in runs) + " |",
    ]
    for key, label in STEPS.items():
        cells = [f"{r.steps[key]:.1f}" if r.steps.get(key) else "n/a" for r in runs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def extract(report: str) -> str | None:
    """This subsection of a report, up to the next heading."""
    found = re.search(rf"^{re.escape(HEADING)}\n.*?(?=^#|\Z)", report, re.S | re.M)
    return found.group(0) if found else None


def place(report: str, text: str) -> str:
    """``report`` with this subsection replaced by ``text``, or inserted before section 1b (or 2)."""
    old = extract(report)
    text = text.rstrip("\n") + "\n\n"
    if old is not None:
        return report.replace(old, text, 1)
    for heading in ("## 1b.", "## 2."):
        at = report.find(f"\n{heading}")
        if at >= 0:
            return report[: at + 1] + text + report[at + 1 :]
    return report.rstrip("\n") + "\n\n" + text


def keep(existing: str | None, rendered: str) -> str:
    """A freshly rendered report with the profile subsection the previous one had (``make bench``
    does not profile)."""
    kept = extract(existing) if existing else None
    return place(rendered, kept) if kept else rendered


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpuprofile", description=__doc__)
    parser.add_argument("--spans", type=int, default=122_880, help="spans per profiled pass")
    parser.add_argument("--repeats", type=int, default=2, help="passes per tree")
    parser.add_argument("--compare", type=Path, help="another source tree to profile as 'before'")
    parser.add_argument("--compare-name", help="what the --compare tree is, for the report (e.g. 'main at 89c216b')")
    parser.add_argument(
        "--native-compare",
        action="store_true",
        help="before: this tree with TRACESEARCH_NATIVE=off; after: with TRACESEARCH_NATIVE=on (the compiled core)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: one pass, JSON out
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    es_url = os.environ.get("TRACESEARCH_ES_URL", "http://127.0.0.1:9200").split(",")[0].rstrip("/")
    if args.measure is not None:
        run = measure(args.spans, args.measure, es_url)
        (args.measure / "run.json").write_text(json.dumps(vars(run)))
        return 0
    afters: list[Run] = []
    befores: list[Run] = []
    for _ in range(args.repeats):
        if args.native_compare:
            befores.append(_measure_in(REPO, args.spans, es_url, native="off"))
            afters.append(_measure_in(REPO, args.spans, es_url, native="on"))
            continue
        if args.compare is not None:
            befores.append(_measure_in(args.compare.resolve(), args.spans, es_url))
        afters.append(_measure_in(REPO, args.spans, es_url))
    command = " ".join(("python -m bench.cpuprofile", *(sys.argv[1:] if argv is None else argv)))
    name = args.compare_name or (
        "this tree with `TRACESEARCH_NATIVE=off` (the pure-Python path)"
        if args.native_compare
        else f"the tree at `{args.compare}`"
    )
    after_name = "this tree with `TRACESEARCH_NATIVE=on`, the compiled core" if args.native_compare else "this tree"
    text = section(
        _median_run(afters),
        _median_run(befores) if befores else None,
        args.spans,
        args.repeats,
        command,
        name,
        args.native_compare,
        after_name,
    )
    print(text)
    report = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(place(report, text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
