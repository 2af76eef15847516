"""Entry point: find Elasticsearch, run the benchmarks in order, write the report.

``--only instrument`` runs benchmark 3 alone, without Elasticsearch, and updates its part of the report.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from bench import (
    alerting,
    auth,
    cpuprofile,
    es,
    ingest,
    instrument,
    kafkamode,
    querybench,
    report,
    sampling,
    sections,
    tailsampling,
)
from bench.config import Config, parse_args
from bench.log import say
from bench.machine import describe


def _es_url() -> str:
    """TRACESEARCH_ES_URL when set, else the dev stack's node (started if it is not running)."""
    if os.environ.get("TRACESEARCH_ES_URL"):
        return os.environ["TRACESEARCH_ES_URL"].split(",")[0].strip().rstrip("/")
    from devstack import elasticsearch

    return elasticsearch.ensure_running().rstrip("/")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through the finally blocks that stop the service and drop the bench indices.
    raise SystemExit(128 + signum)


def _kept_sections(text: str, output: Path) -> str:
    """``text`` with the sections other commands write carried over from ``output``: ``make bench-peers``'s,
    ``make bench-es-cost``'s, ``make bench-growth``'s, ``python -m bench.kafkacpu``'s, and the py-spy profile
    of ``python -m bench.cpuprofile`` (a subsection of section 1)."""
    from bench.es_cost_report import HEADING as ES_COST
    from bench.growth_report import HEADING as GROWTH
    from bench.kafkacpu import HEADING as KAFKA_CPU
    from bench.peers.report import HEADING as PEERS

    existing = output.read_text() if output.exists() else ""
    for heading in (PEERS, ES_COST, GROWTH, KAFKA_CPU):
        kept = sections.section(existing, heading)
        text = text if kept is None else sections.replace_section(text, heading, kept)
    return cpuprofile.keep(existing, text)


def run(config: Config) -> str:
    if config.instrument_only:
        # Benchmark 3 alone needs no Elasticsearch; its section replaces the one in the existing report.
        existing = config.output.read_text() if config.output.exists() else None
        return report.splice_instrument(existing, config, instrument.run(config))
    es_url = _es_url()
    node = es.node(es_url)
    machine = describe(es_url, node)
    say(f"Elasticsearch {node.version} at {es_url}, heap {machine.es_heap_mib} MiB; load {machine.load_1min:.2f}")
    ingest_result = None if config.skip_ingest else ingest.run(config, es_url, node.pid)
    # Three services, auth off, on, and on with a tenant: repeats of the same direct ingest (issue 13's target).
    auth_result = None if config.skip_ingest else auth.run(replace(config, spans=min(config.spans, 100_000)), es_url)
    query_result = None if config.skip_query else querybench.run(config, es_url, node.pid)
    # Over the data set the query phase stored (1M spans): 100 rules, cycle after cycle.
    alerts_result = None if config.skip_query else alerting.run(es_url, config.query_prefix, cycles=5)
    sampling_result = None if config.skip_sampling else sampling.run(config, es_url)
    # Last: with the service stopped and Elasticsearch idle, its processes have the CPU to themselves.
    client_result = None if config.skip_instrument else instrument.run(config)
    text = report.render(
        config, machine, os.getloadavg()[0], ingest_result, query_result, client_result, sampling_result
    )
    if not config.skip_kafka and not config.skip_ingest:
        spans = tailsampling.SPANS // (10 if config.quick else 1)
        phases, memory = tailsampling.run(es_url, kafkamode.bootstrap(), spans)
        text = tailsampling.replace_section(text, tailsampling.section(phases, memory))
    if alerts_result is not None:
        text = alerting.replace_section(text, alerting.section(alerts_result))
    if auth_result is not None:
        text = sections.replace_section(
            text, auth.SECTION, auth.section(auth_result, "make bench"), (auth.OLD_SECTION,)
        )
    return _kept_sections(text, config.output)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    text = run(config)
    config.output.write_text(text)
    say(f"report written to {config.output}")
    print(text)
    return 0
