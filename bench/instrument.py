"""Benchmark 3: the client side, ``tracesearch-instrument``, against the bare OpenTelemetry SDK.

CPU per Flask request, driven by WSGI calls inside the measured process (no network between client and
app), for an app with no OpenTelemetry, the SDK wired by hand, and ``tracesearch.instrument.setup()``,
each sampled and unsampled. The SDK allows one tracer provider per process, so every measurement is a
process of its own (``bench.instrument_worker``); the rounds alternate the variants, in an order that
rotates by round, and the report quotes medians over the rounds and the per-round ratios (the paired
method of docs/performance.md).

Both instrumented variants export through the SDK's own OTLP/HTTP exporter to a sink in this process
(an HTTP server that counts the spans and answers 200), so exporter and serialisation cost the same in
both and the export thread's CPU is part of each request's figure. A stub exporter was not an option:
``setup()`` builds its exporter itself from ``endpoint``, and patching it would measure something else
than what users run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench import stats
from bench.config import REPO, Config
from bench.log import say

WORKER = "bench.instrument_worker"


@dataclass(frozen=True)
class Variant:
    name: str
    worker: str  # plain, bare or setup (bench.instrument_worker)
    sampled: bool
    label: str
    extras: tuple[str, ...] = ()


# Each is one process per round. The first five are the comparison; the others take setup()'s
# additions one at a time onto the bare SDK (unsampled, where they weigh most), and try the fix
# proposed for the largest (setup() with the meter provider left a no-op).
VARIANTS: tuple[Variant, ...] = (
    Variant("plain", "plain", False, "(a) plain Flask, no OpenTelemetry"),
    Variant("bare_sampled", "bare", True, "(b) bare SDK, sampled"),
    Variant("setup_sampled", "setup", True, "(c) `setup()`, sampled"),
    Variant("bare_unsampled", "bare", False, "(b) bare SDK, unsampled"),
    Variant("setup_unsampled", "setup", False, "(c) `setup()`, unsampled"),
    Variant("bare_meter", "bare", False, "bare SDK + an SDK `MeterProvider` with no reader, unsampled", ("meter",)),
    Variant(
        "bare_propagator",
        "bare",
        False,
        "bare SDK + `TracesearchPropagator` (extracts Jaeger, B3, W3C), unsampled",
        ("propagator",),
    ),
    Variant(
        "bare_logging",
        "bare",
        False,
        "bare SDK + `LoggingInstrumentor` (trace ids stamped on records), unsampled",
        ("logging",),
    ),
    Variant(
        "setup_noop_meter_sampled", "setup", True, "`setup()` with a no-op meter provider, sampled", ("noop_meter",)
    ),
    Variant(
        "setup_noop_meter_unsampled",
        "setup",
        False,
        "`setup()` with a no-op meter provider, unsampled",
        ("noop_meter",),
    ),
)
QUEUE_SIZE = 65_536
TARGET = 1.05  # setup() at most the bare SDK's CPU per request + 5%
WORKER_TIMEOUT_S = 120.0
PACKAGES = (
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-flask",
    "opentelemetry-exporter-otlp-proto-http",
    "Flask",
    "ecs-logging",
    "tracesearch-instrument",
)


class Sink:
    """An OTLP/HTTP endpoint that decodes each export, counts its spans and answers an empty 200."""

    def __init__(self) -> None:
        self.spans = 0
        self.posts = 0
        self.bytes = 0
        self.bad: list[str] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector or tracesearch answers

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    sink.bad.append(f"{self.path} {self.headers.get('Content-Type')}")
                request = ExportTraceServiceRequest.FromString(body)
                count = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
                with sink._lock:
                    sink.spans += count
                    sink.posts += 1
                    sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reset(self) -> tuple[int, int, int]:
        with self._lock:
            taken = (self.spans, self.posts, self.bytes)
            self.spans = self.posts = self.bytes = 0
            return taken

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Run:
    """One worker process: one variant, one round."""

    name: str
    round: int
    requests: int
    cpu_s: float
    wall_s: float
    spans: int
    posts: int
    export_bytes: int

    @property
    def cpu_us(self) -> float:
        return self.cpu_s * 1e6 / self.requests

    @property
    def wall_us(self) -> float:
        return self.wall_s * 1e6 / self.requests


@dataclass
class FormatterResult:
    records: int
    rounds: int
    cpu_us: dict[str, dict[str, list[float]]]
    line_bytes: dict[str, dict[str, int]]
    create_us: dict[str, list[float]]
    samples: dict[str, dict[str, str]]

    def median(self, case: str, name: str) -> float:
        return stats.median(self.cpu_us[case][name])

    def ratio(self, case: str) -> float:
        """Median over the rounds of EcsFormatter / StdlibFormatter within the round."""
        pairs = zip(self.cpu_us[case]["tracesearch"], self.cpu_us[case]["ecs"], strict=True)
        return stats.median([ours / theirs for ours, theirs in pairs])


@dataclass
class InstrumentResult:
    command: str
    date: str
    commit: str
    modified_sources: tuple[str, ...]
    cpus: int
    cpu_model: str
    load_start: float
    load_end: float
    python: str
    packages: dict[str, str]
    requests: int
    warmup: int
    rounds: int
    runs: list[Run] = field(default_factory=list)
    formatter: FormatterResult | None = None

    def of(self, name: str) -> list[Run]:
        return sorted((r for r in self.runs if r.name == name), key=lambda r: r.round)

    def cpu_median(self, name: str) -> float:
        return stats.median([r.cpu_us for r in self.of(name)])

    def wall_median(self, name: str) -> float:
        return stats.median([r.wall_us for r in self.of(name)])

    def spread(self, name: str) -> tuple[float, float]:
        values = [r.cpu_us for r in self.of(name)]
        return min(values), max(values)

    def paired_ratio(self, ours: str, theirs: str) -> float:
        """Median over the rounds of ours / theirs measured in the same round."""
        pairs = zip(self.of(ours), self.of(theirs), strict=True)
        return stats.median([a.cpu_us / b.cpu_us for a, b in pairs])

    def paired_overhead(self, name: str) -> float:
        """Median over the rounds of name - plain measured in the same round: the instrumentation's CPU."""
        pairs = zip(self.of(name), self.of("plain"), strict=True)
        return stats.median([a.cpu_us - p.cpu_us for a, p in pairs])

    def paired_difference(self, ours: str, theirs: str) -> float:
        pairs = zip(self.of(ours), self.of(theirs), strict=True)
        return stats.median([a.cpu_us - b.cpu_us for a, b in pairs])

    def paired_overhead_ratio(self, ours: str, theirs: str) -> float:
        """Median over the rounds of (ours - plain) / (theirs - plain), all three from the same round."""
        triples = zip(self.of(ours), self.of(theirs), self.of("plain"), strict=True)
        return stats.median([(a.cpu_us - p.cpu_us) / (b.cpu_us - p.cpu_us) for a, b, p in triples])


def _worker(args: list[str], env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", WORKER, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{WORKER} {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _env(sampled: bool) -> dict[str, str]:
    """No OTEL_* of the caller's; the sampler named the same way for the SDK wired by hand and for setup()."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACESEARCH_INSTRUMENT_"))}
    # Sampled: every request is recorded and exported. Unsampled: the upstream service's traceparent
    # says "not sampled" (flags 00) and the SDK's default parent-based sampler follows it.
    env["OTEL_TRACES_SAMPLER"] = "always_on" if sampled else "parentbased_always_on"
    # The driver makes requests faster than a service gets them, so the default queue (2,048 spans)
    # can fill while an export waits for the sink, and a dropped span would be work not done: room for
    # every span of a process, the same in both instrumented variants (both read OTEL_BSP_*).
    env["OTEL_BSP_MAX_QUEUE_SIZE"] = str(QUEUE_SIZE)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run_requests(config: Config, sink: Sink, round_index: int, variant: Variant) -> Run:
    sink.reset()
    args = ["requests", variant.worker, "--endpoint", sink.url, "--requests", str(config.instrument_requests)]
    args += ["--warmup", str(config.instrument_warmup)] + (["--sampled"] if variant.sampled else [])
    for extra in variant.extras:
        args += ["--extra", extra]
    out = _worker(args, _env(variant.sampled))
    spans, posts, sent = sink.reset()
    exported = variant.sampled and variant.worker != "plain"
    expected = config.instrument_requests + config.instrument_warmup if exported else 0
    if spans != expected or sink.bad:
        raise RuntimeError(f"{variant.name}: the sink received {spans} spans, expected {expected}; {sink.bad[:3]}")
    if expected > QUEUE_SIZE:
        raise RuntimeError(f"{expected} spans per process exceed the batch queue ({QUEUE_SIZE})")
    return Run(
        name=variant.name,
        round=round_index,
        requests=config.instrument_requests,
        cpu_s=float(str(out["cpu_s"])),
        wall_s=float(str(out["wall_s"])),
        spans=spans,
        posts=posts,
        export_bytes=sent,
    )


def _formatter(config: Config) -> FormatterResult:
    out = _worker(
        ["formatter", "--rounds", str(config.formatter_rounds), "--records", str(config.formatter_records)],
        _env(True),
    )
    return FormatterResult(
        records=config.formatter_records,
        rounds=config.formatter_rounds,
        cpu_us=out["cpu_us"],  # type: ignore[arg-type]
        line_bytes=out["line_bytes"],  # type: ignore[arg-type]
        create_us=out["create_us"],  # type: ignore[arg-type]
        samples=out["samples"],  # type: ignore[arg-type]
    )


def run(config: Config) -> InstrumentResult:
    from bench import machine

    facts = machine.describe_local(sources=("instrument",))
    result = InstrumentResult(
        command=config.command,
        date=facts.date,
        commit=facts.commit,
        modified_sources=facts.modified_sources,
        cpus=facts.nproc,
        cpu_model=facts.cpu_model,
        load_start=facts.load_1min,
        load_end=0.0,
        python=facts.python,
        packages={name: version(name) for name in PACKAGES},
        requests=config.instrument_requests,
        warmup=config.instrument_warmup,
        rounds=config.instrument_rounds,
    )
    sink = Sink()
    try:
        for round_index in range(config.instrument_rounds):
            # The order rotates, so no variant always runs first after the formatter or the previous round.
            shift = round_index % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                result.runs.append(_run_requests(config, sink, round_index, variant))
            line = ", ".join(f"{r.name} {r.cpu_us:.0f}" for r in result.runs if r.round == round_index)
            say(f"instrument round {round_index + 1}/{config.instrument_rounds}: CPU µs/request {line}")
    finally:
        sink.close()
    say(f"log formatter: {config.formatter_rounds} rounds of {config.formatter_records} records per case")
    result.formatter = _formatter(config)
    result.load_end = os.getloadavg()[0]
    return result
