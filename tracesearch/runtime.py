"""Per-process wiring: clients are built on first use, after gunicorn forked the worker."""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from elasticsearch import Elasticsearch

from tracesearch.pipeline.sink import DirectSink, SpanSink
from tracesearch.settings import Settings
from tracesearch.storage.es.client import make_client
from tracesearch.storage.es.reader import EsSpanReader
from tracesearch.storage.es.templates import install_templates
from tracesearch.storage.es.writer import EsSpanWriter
from tracesearch.validation import Limits

log = logging.getLogger(__name__)


class Runtime:
    """Everything a request needs, created lazily and shared by the threads of one process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._templates_lock = threading.Lock()
        self._templates_ready = False

    @cached_property
    def es(self) -> Elasticsearch:
        return make_client(self.settings)

    @cached_property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            max_attributes_per_span=s.max_attributes_per_span,
            max_attribute_value_bytes=s.max_attribute_value_bytes,
            max_nesting_depth=s.max_nesting_depth,
        )

    @cached_property
    def writer(self) -> EsSpanWriter:
        return EsSpanWriter(self.es, self.settings.index_prefix, retries=self.settings.bulk_retries)

    @cached_property
    def reader(self) -> EsSpanReader:
        s = self.settings
        return EsSpanReader(self.es, s.index_prefix, s.trace_lookback_s, s.max_trace_duration_s)

    @cached_property
    def sink(self) -> SpanSink:
        if self.settings.pipeline == "kafka":
            from tracesearch.pipeline.kafka_sink import KafkaSink

            return KafkaSink(self.settings)
        return DirectSink(self.writer)

    def close(self) -> None:
        """Flush what the process still holds (gunicorn worker exit, SIGTERM)."""
        sink = self.__dict__.get("sink")
        close = getattr(sink, "close", None)
        if close is not None:
            close()

    def ensure_templates(self) -> None:
        """Install index templates once per process before the first write, so no daily index is ever
        created with a dynamic mapping (Elasticsearch may have been down when the service started)."""
        if self._templates_ready or not self.settings.install_templates:
            return
        with self._templates_lock:
            if not self._templates_ready:
                names = install_templates(self.es, self.settings)
                log.info("index templates installed: %s", ", ".join(names))
                self._templates_ready = True
