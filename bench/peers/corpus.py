"""One deterministic corpus for every system, encoded once per protocol before anything is timed.

The spans come from ``bench.synth`` (HTTP and database semantic-convention attributes, resource
attributes, events, errors) with a fixed seed; their times are offsets from an anchor (the run's start,
to the minute) so that the last hour holds them all and every system's default lookback finds them.
The same batches become OTLP protobuf bodies (tracesearch, Jaeger) and Zipkin v2 JSON bodies (Zipkin,
tracesearch's Zipkin endpoint). Warm-up traces are separate traces, sent before the measured ones.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from bench import otlp, synth
from bench.peers import zipkin_json
from tracesearch.model import Span

OTLP = "otlp"
ZIPKIN = "zipkin"
PROTOCOLS: dict[str, Callable[[Sequence[Span]], bytes]] = {
    OTLP: otlp.encode_request,
    ZIPKIN: zipkin_json.encode_request,
}
NS_PER_MIN = 60 * 1_000_000_000
# Spans start between 50 and 2 minutes before the anchor: a one-hour search ending at the anchor sees all.
FIRST_MIN, LAST_MIN = 50, 2
SERVICES = synth.SERVICES
# Traces fetched by id: among the complete traces of at least this many spans.
BY_ID_MIN_SPANS = 20
BY_ID_TRACES = 50


@dataclass
class Bodies:
    """One protocol's request bodies: warm-up first, then the measured ones."""

    warmup: list[bytes] = field(default_factory=list)
    measured: list[bytes] = field(default_factory=list)


@dataclass
class Corpus:
    anchor_ns: int
    seed: int
    warmup_spans: list[int]
    measured_spans: list[int]
    bodies: dict[str, Bodies]
    # Trace id -> spans, for the traces fetched by id (measured part only).
    by_id: dict[str, int]
    services: tuple[str, ...] = SERVICES

    @property
    def spans(self) -> int:
        return sum(self.measured_spans)

    @property
    def total_spans(self) -> int:
        return sum(self.warmup_spans) + self.spans

    def mean_kib(self, protocol: str) -> float:
        measured = self.bodies[protocol].measured
        return sum(map(len, measured)) / len(measured) / 1024

    def digest(self) -> str:
        """Of every body of every protocol: equal for two runs with the same size, seed and anchor."""
        sha = hashlib.sha256()
        for protocol in sorted(self.bodies):
            for body in (*self.bodies[protocol].warmup, *self.bodies[protocol].measured):
                sha.update(body)
        return sha.hexdigest()[:16]


def span_batches(
    spans: int, seed: int, anchor_ns: int, batch_spans: int, services: Sequence[str] = SERVICES
) -> Iterator[list[Span]]:
    """The spans of the corpus in batches, as an SDK's batch processor sends them."""
    factory = synth.TraceFactory(services, seed)
    start, end = anchor_ns - FIRST_MIN * NS_PER_MIN, anchor_ns - LAST_MIN * NS_PER_MIN
    return synth.batches(itertools.chain.from_iterable(synth.traces(factory, spans, start, end)), batch_spans)


def build(
    spans: int,
    warmup_spans: int,
    seed: int,
    anchor_ns: int,
    batch_spans: int,
    progress: Callable[[int], None] | None = None,
) -> Corpus:
    """Generate and encode; ``progress`` is told the spans of each batch done."""
    corpus = Corpus(anchor_ns, seed, [], [], {p: Bodies() for p in PROTOCOLS}, {})
    # Two generators with their own seeds: the measured traces do not depend on the warm-up's size.
    parts = ((True, warmup_spans, seed + 1), (False, spans, seed))
    trace_sizes: dict[str, int] = {}
    for warmup, size, part_seed in parts:
        for batch in span_batches(size, part_seed, anchor_ns, batch_spans):
            (corpus.warmup_spans if warmup else corpus.measured_spans).append(len(batch))
            for protocol, encode in PROTOCOLS.items():
                target = corpus.bodies[protocol]
                (target.warmup if warmup else target.measured).append(encode(batch))
            if not warmup:
                for span in batch:
                    trace_sizes[span.trace_id] = trace_sizes.get(span.trace_id, 0) + 1
            if progress is not None:
                progress(len(batch))
    big = [trace_id for trace_id, n in trace_sizes.items() if n >= BY_ID_MIN_SPANS]
    corpus.by_id = {trace_id: trace_sizes[trace_id] for trace_id in big[:BY_ID_TRACES]}
    return corpus
