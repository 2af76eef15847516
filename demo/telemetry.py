"""OpenTelemetry SDK setup for one demo service: resource, exporter, batch processor."""

from __future__ import annotations

import logging
import socket
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as OTLPJsonSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from demo.config import Ingest, ServiceSpec, ingest_url

_logger = logging.getLogger(__name__)

# Short enough that a failing backend doesn't stall shutdown for long; the OTLP
# exporter retries transient errors within this budget.
EXPORT_TIMEOUT_S = 5.0


@dataclass
class ExportLedger:
    """Which span ids each export call delivered or lost, keyed by trace id.

    The parent compares this with what the query API returns, so "the trace is
    complete" means "every span this service produced is visible", not a guess.
    """

    exported: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    failed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, spans: Sequence[ReadableSpan], ok: bool) -> None:
        target = self.exported if ok else self.failed
        with self._lock:
            for span in spans:
                ctx = span.get_span_context()
                if ctx is not None:
                    target[f"{ctx.trace_id:032x}"].append(f"{ctx.span_id:016x}")

    def snapshot(self) -> dict[str, dict[str, list[str]]]:
        with self._lock:
            return {"exported": dict(self.exported), "failed": dict(self.failed)}


class LedgerExporter(SpanExporter):
    """Delegates to the real exporter and notes the outcome of every batch."""

    def __init__(self, inner: SpanExporter, ledger: ExportLedger) -> None:
        self._inner = inner
        self._ledger = ledger

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:  # the Zipkin exporter raises on connection errors
            _logger.exception("export raised")
            result = SpanExportResult.FAILURE
        self._ledger.record(spans, result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def make_exporter(ingest: Ingest, base_url: str) -> SpanExporter:
    endpoint = ingest_url(base_url, ingest)
    if ingest is Ingest.OTLP_PROTOBUF:
        return OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_S)
    if ingest is Ingest.OTLP_JSON:
        return OTLPJsonSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_S)
    return ZipkinExporter(endpoint=endpoint, timeout=int(EXPORT_TIMEOUT_S))


def make_resource(spec: ServiceSpec) -> Resource:
    return Resource.create(
        {
            "service.name": spec.name,
            "service.namespace": "shop",
            "service.version": spec.version,
            # Both the deprecated and the current key, as real fleets mix them.
            "deployment.environment": "demo",
            "deployment.environment.name": "demo",
            "host.name": socket.gethostname(),
        }
    )


def make_provider(spec: ServiceSpec, base_url: str) -> tuple[TracerProvider, ExportLedger]:
    provider = TracerProvider(resource=make_resource(spec))
    ledger = ExportLedger()
    exporter = LedgerExporter(make_exporter(spec.ingest, base_url), ledger)
    # A 1 s delay (default 5 s) lets traces show up while the demo still runs.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000, export_timeout_millis=10000))
    return provider, ledger
