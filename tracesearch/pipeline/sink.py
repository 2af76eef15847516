"""Where receivers hand decoded spans: straight to storage (direct mode) or to Kafka (pipeline mode).

Both sinks make the same promise: when ``submit`` returns, every span it counts as accepted is
durable (stored, or acknowledged by every in-sync Kafka replica), and every span it does not accept is
listed with the reason. When nothing can be promised they raise ``StorageUnavailable``,
``BrokerUnavailable`` or ``SinkOverloaded``, and the client retries the whole batch (writes are
idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tracesearch.model import PerTraceMessages, Rejection, Span
from tracesearch.pipeline.store import StorePipeline


class BrokerUnavailable(RuntimeError):
    """Kafka did not acknowledge in time; nothing of the batch is promised, retry it whole."""


class SinkOverloaded(RuntimeError):
    """More bytes in flight than the configured buffer; retry after a pause."""


@dataclass(slots=True)
class SubmitResult:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)


class SpanSink(Protocol):
    # False: the sink forwards ``per_trace`` alone, so a receiver may hand it no model spans when the
    # codec vetted them (``DecodedBatch.unbuilt``).
    needs_model_spans: bool

    def submit(self, spans: Sequence[Span], per_trace: PerTraceMessages | None = None) -> SubmitResult:
        """Make the spans durable, or raise (see the module). ``per_trace``, when given, holds the same
        spans already encoded (a sink may use it)."""
        ...

    def close(self) -> None:
        """Flush what is buffered (process exit)."""
        ...


class DirectSink:
    """Direct mode: the request waits for the store pipeline (small installs, no broker)."""

    needs_model_spans = True

    def __init__(self, pipeline: StorePipeline):
        self._pipeline = pipeline

    def submit(self, spans: Sequence[Span], per_trace: PerTraceMessages | None = None) -> SubmitResult:
        if not spans:
            return SubmitResult()
        written = self._pipeline.store(spans)
        rejected = [
            Rejection(f"span {r.span.trace_id}/{r.span.span_id}", f"refused by storage: {r.reason}")
            for r in written.rejected
        ]
        return SubmitResult(accepted=written.stored, rejected=rejected)

    def close(self) -> None:
        """Nothing buffered: every accepted span was stored before its request was answered."""
