"""The service's per-span work timed in this process, without HTTP or Elasticsearch.

Set beside the service's measured CPU per span, it tells how much of that CPU is the codec and the
document builder (ours to optimise) and how much is HTTP, Flask, the Elasticsearch client and threads.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from bench import stats
from tracesearch import gctune
from tracesearch.admission import DEFAULT_LIMITS
from tracesearch.codecs import otlp_proto
from tracesearch.codecs.otlp_proto import decode_export_request
from tracesearch.model import Span
from tracesearch.servicegraph.aggregator import Aggregator
from tracesearch.servicegraph.pairing import Pairer
from tracesearch.storage.es import native_body
from tracesearch.storage.es.document import bulk_body, document_id, to_document

ROUNDS = 3
PREFIX = "bench-hotpath"


@dataclass
class HotPath:
    spans: int
    decode_us: float
    to_document_us: float
    dumps_us: float
    bulk_body_us: float
    # The service-graph observer on the same spans (pairing + per-minute aggregates), as stored spans.
    observe_us: float = 0.0
    # The compiled core's bulk body (native/), 0 where it is not built or TRACESEARCH_NATIVE=off.
    native_body_us: float = 0.0

    @property
    def writer_body_us(self) -> float:
        """The bulk body the service's writer builds: the compiled core's where it is used."""
        return self.native_body_us or self.bulk_body_us

    @property
    def total_us(self) -> float:
        """decode + the writer's bulk body + the service-graph observer: the service's per-span work
        besides I/O, the flush thread and the request's own costs."""
        return self.decode_us + self.writer_body_us + self.observe_us


def _per_span_us(work: Callable[[], object], spans: int) -> float:
    timings = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        work()
        timings.append(time.perf_counter() - began)
    return stats.median(timings) * 1e6 / spans


def measure(bodies: list[bytes]) -> HotPath:
    """With the service's garbage-collector settings (tracesearch/gctune.py), restored afterwards, and
    the decoder the service would use (TRACESEARCH_NATIVE: the compiled core's where it is on)."""
    thresholds = gc.get_threshold()
    gctune.tune()
    otlp_proto.use_native(native_body.native_for(os.environ.get("TRACESEARCH_NATIVE", "auto")))
    try:
        return _measure(bodies)
    finally:
        otlp_proto.use_native(None)
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _measure(bodies: list[bytes]) -> HotPath:
    decoded = [decode_export_request(body, DEFAULT_LIMITS).spans for body in bodies]
    spans: list[Span] = [span for batch in decoded for span in batch]
    documents = [to_document(span) for span in spans]

    def decode() -> None:
        for body in bodies:
            decode_export_request(body, DEFAULT_LIMITS)

    def build() -> None:
        for span in spans:
            to_document(span)

    def dumps() -> None:
        for span, document in zip(spans, documents, strict=True):
            orjson.dumps({"create": {"_index": PREFIX, "_id": document_id(span)}})
            orjson.dumps(document)

    def bulk() -> None:
        # What EsSpanWriter._write_once builds per request.
        for batch in decoded:
            bulk_body(PREFIX, batch)

    def observe() -> None:
        # ServiceGraphStage.observe without its lock: a window and aggregates as a fresh worker has them.
        pairer, aggregator = Pairer(10.0, 100_000), Aggregator(5_000)
        for batch in decoded:
            added = pairer.add(batch)
            aggregator.add_spans(added.fresh)
            aggregator.add_calls(added.calls)

    builder = native_body.body_builder(os.environ.get("TRACESEARCH_NATIVE", "auto"))

    def native_bulk() -> None:
        for batch in decoded:
            builder(PREFIX, batch)

    n = len(spans)
    steps = (decode, build, dumps, bulk, observe)
    decode_us, document_us, dumps_us, bulk_us, observe_us = (_per_span_us(step, n) for step in steps)
    native_us = _per_span_us(native_bulk, n) if builder is not bulk_body else 0.0
    return HotPath(n, decode_us, document_us, dumps_us, bulk_us, observe_us, native_us)
