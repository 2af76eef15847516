"""Per-process wiring: clients are built on first use, after gunicorn forked the worker."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property

from elasticsearch import Elasticsearch

from tracesearch import metrics
from tracesearch.model import Span
from tracesearch.pipeline.sink import DirectSink, SpanSink
from tracesearch.servicegraph.stage import ServiceGraphStage, StageConfig
from tracesearch.settings import Settings
from tracesearch.storage.es.aggregate_store import EsAggregateStore
from tracesearch.storage.es.aggregates import EsAggregates
from tracesearch.storage.es.client import make_client
from tracesearch.storage.es.reader import EsSpanReader
from tracesearch.storage.es.retention import RetentionSweeper, oldest_start_ns
from tracesearch.storage.es.templates import install_templates
from tracesearch.storage.es.traceql_search import EsTraceqlSearch
from tracesearch.storage.es.writer import EsSpanWriter
from tracesearch.validation import Limits

log = logging.getLogger(__name__)


class Runtime:
    """Everything a request needs, created lazily and shared by the threads of one process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._templates_lock = threading.Lock()
        self._templates_ready = False
        self._stage_lock = threading.Lock()
        self._receive_limits: Limits | None = None

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

    def receive_limits(self) -> Limits:
        """``limits`` plus the retention's bound on span starts: for receivers, the edge. (Ingesters
        store what a receiver accepted; a span of a day deleted since is deleted with its day.)"""
        oldest = oldest_start_ns(time.time(), self.settings.retention_s)
        cached = self._receive_limits
        if cached is None or cached.oldest_start_ns != oldest:
            cached = self._receive_limits = replace(self.limits, oldest_start_ns=oldest)
        return cached

    @cached_property
    def retention(self) -> RetentionSweeper:
        s = self.settings
        return RetentionSweeper(self.es, s.index_prefix, s.retention_s, on_deleted=metrics.INDICES_DELETED.inc)

    def start_retention(self) -> None:
        """Delete expired indices now and then in this process (gunicorn starts it in every worker:
        sweeps are idempotent, and a worker that dies takes no schedule with it)."""
        self.retention.start(self.settings.retention_sweep_interval_s)

    @cached_property
    def writer(self) -> EsSpanWriter:
        s = self.settings
        return EsSpanWriter(self.es, s.index_prefix, retries=s.bulk_retries, concurrency=s.bulk_concurrency)

    @cached_property
    def reader(self) -> EsSpanReader:
        s = self.settings
        return EsSpanReader(self.es, s.index_prefix, s.trace_lookback_s, s.max_trace_duration_s)

    @cached_property
    def traceql(self) -> EsTraceqlSearch:
        return EsTraceqlSearch(self.reader, self.aggregates)

    @cached_property
    def sink(self) -> SpanSink:
        if self.settings.pipeline == "kafka":
            from tracesearch.pipeline.kafka_sink import KafkaSink

            return KafkaSink(self.settings)
        return DirectSink(self.writer, on_stored=self.observe_stored)

    @cached_property
    def aggregates(self) -> EsAggregates:
        """Service graph and span metrics: ``dependencies``, ``span_metrics``, ``service_edges``."""
        return EsAggregates(self.es, self.settings.index_prefix)

    @cached_property
    def servicegraph(self) -> ServiceGraphStage | None:
        s = self.settings
        if not s.servicegraph_enabled:
            return None
        from tracesearch.storage.es.span_lookup import EsSpanLookup

        config = StageConfig(
            wait_s=s.servicegraph_wait_s,
            max_pending=s.servicegraph_max_pending,
            flush_interval_s=s.servicegraph_flush_interval_s,
            max_series=s.servicegraph_max_series,
        )
        return ServiceGraphStage(
            config,
            EsSpanLookup(self.es, s.index_prefix, s.max_trace_duration_s),
            EsAggregateStore(self.es, s.index_prefix),
            metrics.publish_servicegraph,
            # Names this process's aggregate documents; the random part survives pid reuse.
            process=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        )

    def observe_stored(self, spans: Sequence[Span]) -> None:
        """Hand newly stored spans to the service-graph stage; never fails the write that stored them."""
        with self._stage_lock:  # one stage per process, even when the first requests race
            stage = self.servicegraph
        if stage is None:
            return
        try:
            stage.observe(spans)
        except Exception:
            log.exception("service graph stage failed on %d spans", len(spans))

    def close(self) -> None:
        """Flush what the process still holds (gunicorn worker exit, SIGTERM)."""
        sink = self.__dict__.get("sink")
        close = getattr(sink, "close", None)
        if close is not None:
            close()
        stage = self.__dict__.get("servicegraph")
        if stage is not None:
            stage.close()
        retention = self.__dict__.get("retention")
        if retention is not None:
            retention.stop()

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
