"""The store side of the pipeline, one object for both transports: stages, then the writer, then the
observers of what was stored (the service graph and RED metrics).

The direct sink calls it in the receiving request; the Kafka ingester calls it for each consumed batch.
Stages change or drop spans before they are written (none yet: tail sampling needs whole traces across
batches, so the Kafka ingester runs it before calling ``store``). Observers see each newly stored span
once (``WriteResult.created``: a replay's duplicates are not fed again) and can never fail the write that
stored them; spans that tail sampling drops are shown to them too (``observe_unstored``), so the service
map and RED metrics count every span that arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from tracesearch.model import Span
from tracesearch.storage.contracts import SpanWriter, WriteResult

log = logging.getLogger(__name__)

Stage = Callable[[Sequence[Span]], Sequence[Span]]
Observer = Callable[[Sequence[Span]], None]


class StorePipeline:
    def __init__(self, writer: SpanWriter, observers: Sequence[Observer] = (), stages: Sequence[Stage] = ()):
        self._writer = writer
        self._observers = list(observers)
        self._stages = list(stages)

    def store(self, spans: Sequence[Span]) -> WriteResult:
        """Make the spans durable (see ``SpanWriter.write``: raises ``StorageUnavailable`` when nothing
        can be promised), then show the newly stored ones to every observer."""
        for stage in self._stages:
            spans = stage(spans)
        result = self._writer.write(spans) if spans else WriteResult()
        if result.created:
            self._observe(result.created)
        return result

    def observe_unstored(self, spans: Sequence[Span]) -> None:
        """Spans that will not be stored (tail sampling dropped them): the observers count them all the
        same. Each is shown once by the caller, which knows it will not be stored."""
        if spans:
            self._observe(spans)

    def _observe(self, spans: Sequence[Span]) -> None:
        for observer in self._observers:
            try:
                observer(spans)
            except Exception:  # an observer's bug must not turn a stored batch into a failed one
                log.exception("observer %r failed on %d stored spans", observer, len(spans))
