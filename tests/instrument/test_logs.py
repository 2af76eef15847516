"""ECS log lines carry the trace and span ids of the span they were logged in."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import ecs_logging
import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tracesearch.instrument import EcsFormatter

PROVIDER = TracerProvider(resource=Resource.create({"service.name": "logs-test"}))
TRACER = PROVIDER.get_tracer("test")


def record(message: str = "reserved %d items", *args: object) -> logging.LogRecord:
    return logging.getLogger("shop.checkout").makeRecord(
        "shop.checkout", logging.WARNING, __file__, 42, message, args or (3,), None
    )


def test_a_line_logged_in_a_span_carries_its_ids() -> None:
    with TRACER.start_as_current_span("reserve") as span:
        line = json.loads(EcsFormatter(service_name="checkout").format(record()))
    context = span.get_span_context()
    assert line["trace"] == {"id": trace.format_trace_id(context.trace_id)}
    assert line["span"] == {"id": trace.format_span_id(context.span_id)}
    assert line["message"] == "reserved 3 items"
    assert line["log.level"] == "warning"
    assert line["service"]["name"] == "checkout"
    assert {"@timestamp", "ecs.version", "log"} <= line.keys()


def test_a_line_outside_spans_has_no_ids() -> None:
    line = json.loads(EcsFormatter().format(record()))
    assert "trace" not in line and "span" not in line


@pytest.fixture
def stamped_records() -> Iterator[None]:
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    LoggingInstrumentor().instrument(tracer_provider=PROVIDER, inject_trace_context=True, set_logging_format=False)
    yield
    LoggingInstrumentor().uninstrument()


def test_ids_stamped_at_creation_survive_formatting_on_another_thread(stamped_records: None) -> None:
    # A QueueHandler formats on its own thread, where no span is current.
    with TRACER.start_as_current_span("reserve") as span:
        made = logging.getLogRecordFactory()("shop", logging.INFO, __file__, 1, "in span", (), None)
    formatted: list[str] = []
    worker = threading.Thread(target=lambda: formatted.append(EcsFormatter().format(made)))
    worker.start()
    worker.join()
    line = json.loads(formatted[0])
    assert line["trace"]["id"] == trace.format_trace_id(span.get_span_context().trace_id)
    assert line["service"]["name"] == "logs-test"
    assert not any(key.startswith("otel") for key in line)


def test_the_same_fields_as_ecs_logging_alone_plus_the_trace() -> None:
    with TRACER.start_as_current_span("reserve"):
        ours = json.loads(EcsFormatter().format(record()))
        theirs = json.loads(ecs_logging.StdlibFormatter().format(record()))
    assert set(ours) - set(theirs) == {"trace", "span"}
