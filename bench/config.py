"""What one benchmark run does: sizes, concurrency and prefixes, from the command line."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "BENCHMARKS.md"
# --quick must never overwrite the real results, so its report goes elsewhere unless asked.
QUICK_OUTPUT = Path("/tmp/tracesearch-bench-quick.md")
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    spans: int = 300_000
    batch_spans: int = 512
    concurrency: int = 4
    repeats: int = 3
    warmup_batches: int = 16
    query_prefix: str = "bench-q"
    query_spans: int = 1_000_000
    big_traces: int = 250
    big_trace_spans: int = 200
    requests: int = 300
    warmup_requests: int = 20
    workers: int = 2
    threads: int = 8
    seed: int = 20_240_601
    output: Path = DEFAULT_OUTPUT
    quick: bool = False
    skip_ingest: bool = False
    skip_query: bool = False
    skip_kafka: bool = False
    skip_sampling: bool = False
    # Kafka pipeline mode: end-to-end ingest with each of these ingester counts, then latency to searchable.
    kafka_ingesters: tuple[int, ...] = (1, 2)
    latency_seconds: float = 30.0
    latency_batch_spans: int = 64
    latency_load: float = 0.5
    keep_query_data: bool = True
    # Benchmark 3, the client side (tracesearch-instrument): needs no Elasticsearch.
    skip_instrument: bool = False
    instrument_rounds: int = 9
    instrument_requests: int = 3000
    instrument_warmup: int = 500
    formatter_rounds: int = 15
    formatter_records: int = 2000
    argv: tuple[str, ...] = ()

    @property
    def instrument_only(self) -> bool:
        """Only benchmark 3: no Elasticsearch, and the report is updated in place, not rewritten."""
        return self.skip_ingest and self.skip_query and not self.skip_instrument

    @property
    def command(self) -> str:
        return " ".join(("python -m bench", *self.argv)).strip()


# Small sizes for a smoke run of the harness itself; its data set is dropped at the end.
QUICK = Config(
    spans=20_480,
    repeats=1,
    warmup_batches=4,
    query_prefix="bench-q-quick",
    query_spans=40_000,
    big_traces=20,
    requests=40,
    warmup_requests=5,
    output=QUICK_OUTPUT,
    keep_query_data=False,
    latency_seconds=8.0,
    instrument_rounds=2,
    instrument_requests=500,
    instrument_warmup=100,
    formatter_rounds=3,
    formatter_records=500,
)
# `--only PART` runs one part; the others are skipped.
PARTS = ("ingest", "query", "instrument")


def parse_args(argv: Sequence[str]) -> Config:
    defaults = Config()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the harness itself")
    parser.add_argument("--spans", type=int, help=f"spans per ingest repeat (default {defaults.spans})")
    parser.add_argument("--concurrency", type=int, help=f"keep-alive connections (default {defaults.concurrency})")
    parser.add_argument("--repeats", type=int, help=f"ingest and ceiling repeats (default {defaults.repeats})")
    parser.add_argument("--query-spans", type=int, help=f"spans in the query data set (default {defaults.query_spans})")
    parser.add_argument("--query-prefix", help=f"index prefix of the query data set (default {defaults.query_prefix})")
    parser.add_argument("--requests", type=int, help=f"measured requests per query kind (default {defaults.requests})")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("TRACESEARCH_WORKERS", defaults.workers)),
        help="gunicorn workers of the service",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("TRACESEARCH_THREADS", defaults.threads)),
        help="threads per gunicorn worker",
    )
    parser.add_argument("--output", type=Path, help=f"report file (default {defaults.output})")
    parser.add_argument("--skip-ingest", action="store_true", help="only the query benchmark")
    parser.add_argument("--skip-query", action="store_true", help="only the ingest benchmarks")
    parser.add_argument(
        "--skip-kafka", action="store_true", help="no Kafka pipeline phases (direct ingest and ceiling only)"
    )
    parser.add_argument(
        "--skip-instrument", action="store_true", help="no client-side benchmark (tracesearch-instrument)"
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        help="run one part: ingest (with Kafka unless --skip-kafka), query, or instrument (no Elasticsearch "
        "needed; its section and summary rows are replaced in the existing report)",
    )
    parser.add_argument(
        "--instrument-rounds", type=int, help=f"rounds of benchmark 3 (default {defaults.instrument_rounds})"
    )
    parser.add_argument(
        "--skip-sampling", action="store_true", help="no remote-sampling endpoint phase (python -m bench.sampling)"
    )
    args = parser.parse_args(list(argv))
    if args.only is not None and (args.skip_ingest or args.skip_query or args.skip_instrument):
        parser.error("--only and --skip-ingest/--skip-query/--skip-instrument do not combine")

    base = QUICK if args.quick else defaults
    config = replace(
        base,
        spans=_given(args.spans, base.spans),
        concurrency=_given(args.concurrency, base.concurrency),
        repeats=_given(args.repeats, base.repeats),
        query_spans=_given(args.query_spans, base.query_spans),
        query_prefix=_given(args.query_prefix, base.query_prefix),
        requests=_given(args.requests, base.requests),
        output=_given(args.output, base.output),
        workers=args.workers,
        threads=args.threads,
        quick=args.quick,
        skip_ingest=args.skip_ingest or args.only not in (None, "ingest"),
        skip_query=args.skip_query or args.only not in (None, "query"),
        skip_kafka=args.skip_kafka,
        skip_instrument=args.skip_instrument or args.only not in (None, "instrument"),
        instrument_rounds=_given(args.instrument_rounds, base.instrument_rounds),
        skip_sampling=args.skip_sampling,
        argv=tuple(argv),
    )
    _check(parser, config)
    return config


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def _check(parser: argparse.ArgumentParser, config: Config) -> None:
    if config.spans < config.batch_spans or config.concurrency < 1 or config.repeats < 1:
        parser.error("--spans must be at least one batch, --concurrency and --repeats at least 1")
    if config.query_spans < config.big_traces * config.big_trace_spans:
        parser.error("--query-spans is smaller than the 200-span traces it must contain")
    if config.requests < 1:
        parser.error("--requests must be at least 1")
    if config.instrument_rounds < 1:
        parser.error("--instrument-rounds must be at least 1")
