"""Where receivers hand decoded spans: straight to storage (direct mode) or to Kafka (pipeline mode).

Both sinks make the same promise: when ``submit`` returns, every span it counts as accepted is
durable (stored in Elasticsearch, or acknowledged by every in-sync Kafka replica), and every span
it does not accept is listed with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tracesearch.model import PerTraceMessages, Rejection, Span
from tracesearch.storage.base import SpanWriter


class BrokerUnavailable(RuntimeError):
    """Kafka did not acknowledge in time; nothing of the batch is promised, retry it whole."""


class SinkOverloaded(RuntimeError):
    """More bytes in flight than the configured buffer; retry after a pause."""


@dataclass(slots=True)
class SubmitResult:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)


class SpanSink(Protocol):
    def submit(self, spans: Sequence[Span], per_trace: PerTraceMessages | None = None) -> SubmitResult:
        """Make the spans durable, or raise ``StorageUnavailable``/``BrokerUnavailable`` (retry whole).
        ``per_trace``, when given, holds the same spans already encoded (a sink may use it)."""
        ...


class DirectSink:
    """Direct mode: the request waits for the Elasticsearch bulk write (small installs, no broker)."""

    def __init__(self, writer: SpanWriter, on_stored: Callable[[Sequence[Span]], None] | None = None):
        self._writer = writer
        self._on_stored = on_stored  # the service-graph stage: sees each newly stored span once

    def submit(self, spans: Sequence[Span], per_trace: PerTraceMessages | None = None) -> SubmitResult:
        if not spans:
            return SubmitResult()
        written = self._writer.write(spans)
        if self._on_stored is not None and written.created:
            self._on_stored(written.created)
        rejected = [
            Rejection(f"span {r.span.trace_id}/{r.span.span_id}", f"refused by storage: {r.reason}")
            for r in written.rejected
        ]
        return SubmitResult(accepted=written.stored, rejected=rejected)
