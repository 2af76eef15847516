"""The ingest workload, prepared before anything is timed: OTLP bodies and the matching ``_bulk`` bodies."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from bench import otlp, synth
from bench.config import Config
from bench.log import say
from tracesearch.admission import DEFAULT_LIMITS
from tracesearch.codecs.otlp_proto import decode_export_request
from tracesearch.storage.es import document

INGEST_SERVICES = synth.SERVICES[:4]
NS_PER_S = 1_000_000_000


@dataclass
class Workload:
    warmup_otlp: list[bytes]
    otlp: list[bytes]
    warmup_bulk: list[bytes]
    bulk: list[bytes]
    warmup_spans: int
    spans: int
    bulk_prefix: str
    prepare_seconds: float

    def info(self) -> WorkloadInfo:
        otlp_kib, bulk_kib = _mean_kib(self.otlp), _mean_kib(self.bulk)
        return WorkloadInfo(self.warmup_spans, self.spans, otlp_kib, bulk_kib, self.prepare_seconds)


@dataclass(frozen=True)
class WorkloadInfo:
    """What the report says of the workload, without holding its bodies (a gigabyte) any longer."""

    warmup_spans: int
    spans: int
    otlp_kib: float
    bulk_kib: float
    prepare_seconds: float


def _mean_kib(bodies: list[bytes]) -> float:
    return sum(map(len, bodies)) / len(bodies) / 1024


def prepare(config: Config, bulk_prefix: str) -> Workload:
    began = time.monotonic()
    factory = synth.TraceFactory(INGEST_SERVICES, config.seed)
    warmup_spans = config.warmup_batches * config.batch_spans
    now = time.time_ns()
    # Spans that started in one recent minute: a live system sending this many spans at this rate sends
    # spans of the last seconds. (A quarter-hour spread, used before, made the service-graph stage write
    # per-minute aggregates for 15 minutes at once, fifteen times what live traffic makes it write.)
    traces = synth.traces(factory, warmup_spans + config.spans, now - 120 * NS_PER_S, now - 60 * NS_PER_S)
    batches = list(synth.batches(itertools.chain.from_iterable(traces), config.batch_spans))
    bodies = otlp.encode_all(batches)
    say(f"encoded {len(bodies)} OTLP bodies, decoding them into _bulk bodies for {bulk_prefix}")
    bulk = [bulk_body(body, bulk_prefix) for body in bodies]
    warm = config.warmup_batches
    return Workload(
        bodies[:warm],
        bodies[warm:],
        bulk[:warm],
        bulk[warm:],
        warmup_spans,
        config.spans,
        bulk_prefix,
        time.monotonic() - began,
    )


def bulk_body(otlp_body: bytes, prefix: str) -> bytes:
    """What the service would send for this OTLP body: its own decoder and ``bulk_body``, so the
    ceiling indexes byte-identical documents (only the index prefix differs)."""
    batch = decode_export_request(otlp_body, DEFAULT_LIMITS)
    if batch.rejected or batch.warnings:
        raise RuntimeError(f"the generator made spans tracesearch refuses: {batch.rejected[:3]} {batch.warnings[:3]}")
    return document.bulk_body(prefix, batch.spans)
