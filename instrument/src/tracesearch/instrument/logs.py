"""ECS JSON log lines that carry the trace: Elastic's formatter plus the OpenTelemetry ids.

ecs-logging knows the Elastic APM agent's record fields; with OpenTelemetry the ids come from
the logging instrumentation (``otelTraceID`` and friends, stamped when the record is created, so
a record formatted later on another thread still names the span it was logged in) or, when that
instrumentation is off, from the span current while formatting.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import ecs_logging
from opentelemetry import trace

_OTEL_FIELDS = ("otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName")
_NO_ID = "0"


class EcsFormatter(ecs_logging.StdlibFormatter):
    """``trace.id``, ``span.id`` and ``service.name`` in ECS form, the otel* extras left out."""

    def __init__(self, *, service_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(exclude_fields=list(_OTEL_FIELDS), **kwargs)
        self._service_name = service_name

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        result: dict[str, Any] = super().format_to_ecs(record)
        trace_id, span_id = _ids(record)
        if trace_id is not None:
            result["trace"] = {"id": trace_id}
            result["span"] = {"id": span_id}
        service = getattr(record, "otelServiceName", None) or self._service_name
        if service:
            result.setdefault("service", {}).setdefault("name", service)
        return result


def _ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    stamped = getattr(record, "otelTraceID", None)
    if stamped is not None:
        if stamped == _NO_ID:
            return None, None
        return stamped, getattr(record, "otelSpanID", None)
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def ecs_handler(target: str, *, service_name: str | None = None) -> logging.Handler:
    """A handler writing ECS JSON lines to "stderr", "stdout" or a file (appended)."""
    handler: logging.Handler
    if target == "stderr":
        handler = logging.StreamHandler(sys.stderr)
    elif target == "stdout":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(EcsFormatter(service_name=service_name))
    return handler
