"""The remote-sampling endpoint under a few hundred polling clients (issue 11).

Each client is what an OpenTelemetry ``jaegerremote`` sampler is: one keep-alive connection that asks
``GET /sampling?service=<its service>`` once per polling interval. The clients run on one asyncio loop
(plain HTTP/1.1 over asyncio streams: no client library, little client CPU), start spread over the first
interval, and each measures its requests from the first byte sent to the last byte of the answer read.

Two phases on the same service (direct sink, the bench's gunicorn workers and threads, a strategies
file of 100 services with 20 operations each; a quarter of the clients ask for services it does not list):

- *polling*: every client polls once a second, as a fleet of 300 processes polling at 1 s would (the
  jaegerremote default is 60 s, so this is 60 times a fleet of 300);
- *saturated*: every client asks again as soon as its answer arrived: the endpoint's ceiling in
  requests per second at that concurrency, and the latency it costs.

Runnable alone: ``python -m bench.sampling`` writes only its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import sections, service
from bench.config import DEFAULT_OUTPUT, Config
from bench.log import say
from bench.stats import percentile

CLIENTS = 300
POLL_INTERVAL_S = 1.0
POLLING_SECONDS = 30.0
SATURATED_SECONDS = 10.0
SERVICES = 100
OPERATIONS = 20
UNLISTED_SHARE = 0.25
PREFIX = "bench-sampling"
HEADING = "## Remote-sampling endpoint under polling clients"
P95_TARGET_MS = 50.0


@dataclass
class Phase:
    name: str
    clients: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_s) / self.seconds

    def ms(self, pct: float) -> float:
        return percentile(self.latencies_s, pct) * 1000


@dataclass
class SamplingResult:
    workers: int
    threads: int
    answer_bytes: int
    phases: list[Phase]
    service_cpu_s: dict[str, float]
    # The first request of each client, on its new connection (all clients connecting at once).
    first_p95_ms: float
    # The machine's 1-minute load average before and after: other work on it shows here.
    load: tuple[float, float] = (0.0, 0.0)


def strategies_file(folder: Path) -> Path:
    document = {
        "default_strategy": {"type": "probabilistic", "param": 0.1},
        "service_strategies": [
            {
                "service": f"svc-{i}",
                "type": "probabilistic",
                "param": 0.5,
                "operation_strategies": [
                    {"operation": f"GET /api/v1/resource-{j}", "type": "probabilistic", "param": 0.05}
                    for j in range(OPERATIONS)
                ],
            }
            for i in range(SERVICES)
        ],
    }
    path = folder / "strategies.json"
    path.write_text(json.dumps(document))
    return path


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive request; the answer's status (its body read whole, by Content-Length)."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _request(service_name: str) -> bytes:
    return f"GET /sampling?service={service_name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def _connect(port: int, service_name: str, first: Phase) -> Connection:
    """A client's connection, and its first request (timed apart: it waits for the worker's accept)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = time.perf_counter()
    status = await _get(reader, writer, _request(service_name))
    if status == 200:
        first.latencies_s.append(time.perf_counter() - began)
    else:
        first.errors += 1
    return reader, writer


async def _client(
    connection: Connection, request: bytes, phase: Phase, until: float, interval: float, due: float
) -> None:
    reader, writer = connection
    while True:
        if interval:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += interval
        if time.monotonic() >= until:
            return
        began = time.perf_counter()
        status = await _get(reader, writer, request)
        if status == 200:
            phase.latencies_s.append(time.perf_counter() - began)
        else:
            phase.errors += 1


async def _clients(port: int, phases: Sequence[tuple[Phase, float]], first: Phase, rng: random.Random) -> None:
    """Connect every client (its first request timed into ``first``), then run each phase on the same
    keep-alive connections, as long-lived samplers hold theirs."""
    clients = max(phase.clients for phase, _ in phases)
    names = [
        f"unlisted-{i}" if rng.random() < UNLISTED_SHARE else f"svc-{rng.randrange(SERVICES)}" for i in range(clients)
    ]
    began = time.perf_counter()
    connections = await asyncio.gather(*(_connect(port, name, first) for name in names))
    first.seconds = time.perf_counter() - began
    try:
        for phase, interval in phases:
            start = time.monotonic()
            until = start + phase.seconds
            # Spread over the first interval, as samplers started at different times are.
            dues = [start + rng.random() * interval for _ in names[: phase.clients]]
            await asyncio.gather(
                *(
                    _client(connection, _request(name), phase, until, interval, due)
                    for connection, name, due in zip(connections, names, dues, strict=False)
                )
            )
    finally:
        for _, writer in connections:
            writer.close()


def run(config: Config, es_url: str, clients: int = CLIENTS, polling_s: float = POLLING_SECONDS) -> SamplingResult:
    rng = random.Random(config.seed + 11)
    folder = Path(tempfile.mkdtemp(prefix="tracesearch-bench-sampling-"))
    env = {"TRACESEARCH_SAMPLING_STRATEGIES_FILE": str(strategies_file(folder))}
    running = service.start(es_url, PREFIX, config.workers, config.threads, env)
    cpu: dict[str, float] = {}
    load_start = os.getloadavg()[0]
    try:
        answer = _answer_size(running.port)
        # Warm-up: every worker has served, parsed and cached the file.
        asyncio.run(_clients(running.port, [(Phase("warm-up", 20, 2.0), 0.0)], Phase("connect", 20, 0.0), rng))
        first = Phase("first request on a new connection", clients, 0.0)
        polling = Phase("polling", clients, polling_s)
        saturated = Phase("saturated", clients, SATURATED_SECONDS)
        before = running.cpu_seconds()
        asyncio.run(_clients(running.port, [(polling, POLL_INTERVAL_S)], first, rng))
        cpu[polling.name] = running.cpu_seconds() - before
        before = running.cpu_seconds()
        asyncio.run(_clients(running.port, [(saturated, 0.0)], Phase("connect", clients, 0.0), rng))
        cpu[saturated.name] = running.cpu_seconds() - before
        phases = [polling, saturated]
        for phase in (first, polling, saturated):
            say(
                f"sampling {phase.name}: {len(phase.latencies_s):,} requests, p50 {phase.ms(50):.1f} ms, "
                f"p95 {phase.ms(95):.1f} ms, p99 {phase.ms(99):.1f} ms, {phase.errors} errors"
            )
        first_p95_ms = first.ms(95)
    finally:
        running.stop()
    load = (load_start, os.getloadavg()[0])
    return SamplingResult(config.workers, config.threads, answer, phases, cpu, first_p95_ms, load)


def _answer_size(port: int) -> int:
    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /sampling?service=svc-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        header = (await reader.readuntil(b"\r\n\r\n")).decode()
        writer.close()
        return next(int(h.split(":")[1]) for h in header.split("\r\n") if h.lower().startswith("content-length"))

    return asyncio.run(one())


def summary_rows(result: SamplingResult) -> list[str]:
    polling = result.phases[0]
    met = "met" if polling.ms(95) <= P95_TARGET_MS and polling.errors == 0 else "**missed**"
    return [
        f"| Remote sampling, {polling.clients} clients polling every {POLL_INTERVAL_S:.0f} s, p95 (p50) "
        f"| {polling.ms(95):.1f} ms ({polling.ms(50):.1f} ms) | ≤ {P95_TARGET_MS:.0f} ms: {met} |",
    ]


def section(result: SamplingResult) -> list[str]:
    lines = [
        HEADING,
        "",
        f"`GET /sampling?service=` (Jaeger's SamplingStrategyResponse, {result.answer_bytes} bytes for a service "
        f"with {OPERATIONS} operation strategies) from {result.phases[0].clients} keep-alive clients on one "
        "asyncio loop, against "
        f"the service with {result.workers} gunicorn workers x {result.threads} threads and a strategies file of "
        f"{SERVICES} services x {OPERATIONS} operations; {UNLISTED_SHARE:.0%} of the clients ask for a service the "
        "file does not list (the default strategy). Latency from the first byte sent to the last byte read, on "
        "the same machine as the service. *Polling*: each client once a second, started spread over the first "
        "second (300 jaegerremote processes at their default 60 s interval send 5 req/s: this is 60 times that). "
        "*Saturated*: each client again as soon as it has its answer. `python -m bench.sampling` reruns this "
        "section alone.",
        "",
        f"Every client first connects and asks once (all {result.phases[0].clients} at the same moment, not in the "
        f"table: their p95 was {result.first_p95_ms:.0f} ms, the wait for the workers to accept 300 connections), "
        "then each phase runs on those keep-alive connections, as long-lived samplers hold theirs. The service's "
        "CPU (master and workers) over a phase is divided by its requests; the polling phase's includes the "
        "idle workers' own housekeeping. Machine load average (1 min) "
        f"{result.load[0]:.2f} before, {result.load[1]:.2f} after: the load generator, the service and "
        "Elasticsearch share its cores, with whatever else ran then. The 50 ms p95 target is ours (the issue "
        "names none): far below any polling interval, and what a proxy's default timeouts never come near.",
        "",
        "| Phase | clients | seconds | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors "
        "| service CPU µs/request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in result.phases:
        count = len(phase.latencies_s)
        cpu_us = result.service_cpu_s[phase.name] / count * 1e6 if count else 0.0
        lines.append(
            f"| {phase.name} | {phase.clients} | {phase.seconds:.0f} | {count:,} | {phase.requests_per_s:,.0f} "
            f"| {phase.ms(50):.1f} | {phase.ms(95):.1f} | {phase.ms(99):.1f} | {max(phase.latencies_s) * 1000:.1f} "
            f"| {phase.errors} | {cpu_us:.0f} |"
        )
    lines.append("")
    return lines


def replace_section(text: str, new: Sequence[str]) -> str:
    """``text`` with its remote-sampling section replaced by ``new`` (appended when it has none)."""
    return sections.replace_section(text, HEADING, "\n".join(new))


def replace_summary_row(text: str, rows: Sequence[str]) -> str:
    """``text`` with its summary table's remote-sampling row replaced (or added at the table's end)."""
    lines = text.split("\n")
    kept = [line for line in lines if not line.startswith("| Remote sampling,")]
    if "## Summary" not in kept:
        return text
    start = kept.index("## Summary")
    end = next((i for i in range(start + 3, len(kept)) if not kept[i].startswith("|")), len(kept))
    return "\n".join([*kept[:end], *rows, *kept[end:]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sampling", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--seconds", type=float, default=POLLING_SECONDS, help="length of the polling phase")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from bench.cli import _es_url

    result = run(Config(), _es_url(), clients=args.clients, polling_s=args.seconds)
    text = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(replace_section(replace_summary_row(text, summary_rows(result)), section(result)))
    print("\n".join([*summary_rows(result), "", *section(result)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
