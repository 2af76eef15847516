"""Ingest throughput with authentication on vs off, in the same run (issue 13's target: at most 3% slower).

Two services on the same Elasticsearch, identical but for ``TRACESEARCH_AUTH_KEYS_FILE`` (one ingest key,
sent as ``Authorization: Bearer`` with every request), each writing to its own prefix. Paired repeats
alternate which goes first (off/on, on/off, ...), so a drift of the machine affects both alike; each
repeat posts the same OTLP protobuf bodies as ``bench/ingest.py`` (direct mode: the answer waits for the
bulk write), checks every span was stored, and deletes the indices again. The answer is the median of
each side and the median of the per-pair ratios. Tenants are not there yet (issue 13, item 2): this is
authentication alone.

Runnable alone: ``python -m bench.auth [--spans N] [--repeats N] [--write]`` (``--write`` replaces its
section of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import es, loadgen, sections, service, stats, workload
from bench.alerting import REPORT
from bench.config import Config
from bench.ingest import OTLP_HEADERS, SETTLE_S, check_otlp
from bench.log import say
from tracesearch.auth.keys import KeyRecord, hash_key, new_key
from tracesearch.auth.store import add_key
from tracesearch.storage.es.indices import span_index_pattern

SECTION = "## Ingest with authentication on vs off"


def run(config: Config, es_url: str) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    prefixes = {"off": f"bench-auth-off-{run_id}", "on": f"bench-auth-on-{run_id}"}
    work = workload.prepare(config, f"bench-auth-bulk-{run_id}")
    expected = work.warmup_spans + work.spans
    folder = Path(tempfile.mkdtemp(prefix="tracesearch-bench-auth-"))
    keys_file = folder / "keys.yaml"
    key = new_key("bench")
    add_key(str(keys_file), KeyRecord("bench", hash_key(key), frozenset({"ingest"})))
    extra = {"on": {"TRACESEARCH_AUTH_KEYS_FILE": str(keys_file)}, "off": {}}
    headers = {"off": OTLP_HEADERS, "on": {**OTLP_HEADERS, "Authorization": f"Bearer {key}"}}
    running = {
        side: service.start(es_url, prefixes[side], config.workers, config.threads, extra[side])
        for side in ("off", "on")
    }
    rates: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for repeat in range(config.repeats):
            order = ("off", "on") if repeat % 2 == 0 else ("on", "off")
            for side in order:

                def post(bodies: list[bytes], side: str = side) -> loadgen.LoadResult:
                    port = running[side].port
                    return loadgen.post_all(port, "/v1/traces", headers[side], bodies, config.concurrency, check_otlp)

                failures = post(work.warmup_otlp).failures
                time.sleep(SETTLE_S)
                result = post(work.otlp)
                failures += result.failures
                stored = es.count(es_url, prefixes[side])
                if failures or stored != expected:
                    raise RuntimeError(f"auth {side}: {stored} of {expected} stored; {failures[:3]}")
                rates[side].append(work.spans / result.seconds)
                es.delete_indices(es_url, span_index_pattern(prefixes[side]))
                time.sleep(SETTLE_S)
            say(f"repeat {repeat + 1}: off {rates['off'][-1]:,.0f} spans/s, on {rates['on'][-1]:,.0f} spans/s")
    finally:
        for process in running.values():
            process.stop()
        for prefix in prefixes.values():
            es.drop_prefix(es_url, prefix)
    ratios = [on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    check_off, check_on = check_cost(keys_file, key)
    return {
        "check_off_us": check_off * 1e6,
        "check_on_us": check_on * 1e6,
        "off": rates["off"],
        "on": rates["on"],
        "off_median": stats.median(rates["off"]),
        "on_median": stats.median(rates["on"]),
        "pair_ratio_median": stats.median(ratios),
        "config": config,
    }


def check_cost(keys_file: Path, key: str, requests: int = 20_000) -> tuple[float, float]:
    """Seconds per request of the app's before-request work for an OTLP POST, auth (off, on): in process,
    best of 5, so the machine's noise (which the A/B above cannot remove on 2 shared cores) stays out."""
    from tracesearch.app import create_app
    from tracesearch.settings import Settings

    costs = []
    for settings, headers in (
        (Settings(install_templates=False), dict(OTLP_HEADERS)),
        (
            Settings(install_templates=False, auth_keys_file=str(keys_file)),
            {**OTLP_HEADERS, "Authorization": f"Bearer {key}"},
        ),
    ):
        app = create_app(settings)
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(requests):
                with app.test_request_context("/v1/traces", method="POST", headers=headers):
                    app.preprocess_request()
            best = min(best, (time.perf_counter() - started) / requests)
        costs.append(best)
    return costs[0], costs[1]


def section(result: dict[str, Any], command: str) -> str:
    config = result["config"]
    assert isinstance(config, Config)
    off, on = result["off"], result["on"]
    assert isinstance(off, list) and isinstance(on, list)
    slower = 1 - float(result["pair_ratio_median"])
    rows = "\n".join(
        f"| {i + 1} | {a:,.0f} | {b:,.0f} | {b / a - 1:+.1%} |" for i, (a, b) in enumerate(zip(off, on, strict=True))
    )
    return f"""{SECTION}

`{command}` ({os.cpu_count()} cores, {platform.machine()}): {config.spans:,} spans in OTLP protobuf bodies
of {config.batch_spans} spans, {config.concurrency} connections, direct mode, {config.workers} workers of
{config.threads} threads, each side
its own service on the same Elasticsearch; {config.repeats} paired repeats alternating which side goes first.
Auth on: one ingest key in `TRACESEARCH_AUTH_KEYS_FILE`, sent as `Authorization: Bearer` on every request
(verified with scrypt once per worker, then a SHA-256 and a dict look-up per request). Tenants (issue 13,
item 2) are not in this measurement: they do not exist yet.

| Repeat | Auth off (spans/s) | Auth on (spans/s) | On vs off |
| --- | --- | --- | --- |
{rows}

Medians: off {result["off_median"]:,.0f} spans/s, on {result["on_median"]:,.0f} spans/s; median of the per-pair
ratios: **{slower:+.1%} slower** with auth on (target: at most 3%). On this 2-core machine, shared by
Elasticsearch, both services and the load generator (and whatever else runs), single repeats scatter by
tens of percent either way: read the spread of the table before the median.

In process (best of 5 runs of 20,000 requests, no network): the before-request work of an OTLP POST takes
{result["check_off_us"]:.1f} µs with auth off and {result["check_on_us"]:.1f} µs with a cached bearer key,
so authentication adds {float(result["check_on_us"]) - float(result["check_off_us"]):.1f} µs per request
(that is {(float(result["check_on_us"]) - float(result["check_off_us"])) / config.batch_spans:.3f} µs per span
at {config.batch_spans} spans a request, against the service's ~76 µs of CPU per span in the ingest table
above). A key's first request in each worker costs one scrypt verification (~50-100 ms here).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args()
    config = replace(Config(), spans=args.spans, repeats=args.repeats)
    command = f"python -m bench.auth --spans {args.spans} --repeats {args.repeats}"
    text = section(run(config, args.es_url.rstrip("/")), command)
    print(text)
    if args.write:
        REPORT.write_text(sections.replace_section(REPORT.read_text(), SECTION, text))


if __name__ == "__main__":
    main()
