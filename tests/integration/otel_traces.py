"""Build a real three-service trace with the OpenTelemetry SDK and export it with a real exporter.

Every span also goes to an in-memory exporter, so tests compare what the API returns with exactly
what the SDK produced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

LONG_NOTE = "please leave the parcel with the concierge because nobody answers the doorbell before noon"
SERVICES = ("frontend", "checkout", "inventory")


@dataclass
class ExportedTrace:
    trace_id: str
    spans: list[ReadableSpan]
    linked: list[ReadableSpan]

    def by_name(self, name: str) -> ReadableSpan:
        return next(s for s in self.spans + self.linked if s.name == name)

    @property
    def run(self) -> str:
        """The ``test.run`` tag three_service_trace put on the resource of every span."""
        tag = self.spans[0].resource.attributes["test.run"]
        assert isinstance(tag, str)
        return tag


def start_ns(span: ReadableSpan) -> int:
    """The SDK's start time: Optional in its type, set on every span that reached an exporter."""
    assert span.start_time is not None
    return span.start_time


def end_ns(span: ReadableSpan) -> int:
    """The SDK's end time: Optional in its type, set on every span that reached an exporter."""
    assert span.end_time is not None
    return span.end_time


def _provider(service: str, exporter: SpanExporter, memory: InMemorySpanExporter, tag: str) -> TracerProvider:
    resource = Resource.create(
        {"service.name": service, "service.version": "1.4.2", "host.name": f"{service}-1", "test.run": tag}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider


def three_service_trace(make_exporter: Callable[[], SpanExporter], tag: str) -> ExportedTrace:
    """frontend (SERVER) → checkout (CLIENT→SERVER, error) → inventory (SERVER, with a link)."""
    memory = InMemorySpanExporter()
    providers = {name: _provider(name, make_exporter(), memory, tag) for name in SERVICES}
    front = providers["frontend"].get_tracer("demo.frontend", "0.1")
    checkout = providers["checkout"].get_tracer("demo.checkout", "0.2")
    inventory = providers["inventory"].get_tracer("demo.inventory")

    with inventory.start_as_current_span("batch-import") as batch:
        batch_context = batch.get_span_context()
    with front.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "GET")
        root.set_attribute("http.response.status_code", 200)
        root.set_attribute("cart.total", 12.5)
        root.set_attribute("feature.flag", True)
        root.set_attribute("cart.items", ["apple", "pear"])
        root.set_attribute("order.note", LONG_NOTE)
        root.add_event("cache.miss", {"cache.key": "cart:42", "retry": 2})
        with checkout.start_as_current_span("POST /checkout", kind=SpanKind.CLIENT) as client:
            client.set_attribute("http.response.status_code", 503)
            with checkout.start_as_current_span("checkout", kind=SpanKind.SERVER) as server:
                server.set_attribute("http.response.status_code", 503)
                server.set_status(Status(StatusCode.ERROR, "payment backend down"))
                server.record_exception(RuntimeError("backend timeout"))
                with inventory.start_as_current_span(
                    "reserve", kind=SpanKind.SERVER, links=[Link(batch_context, {"link.kind": "batch"})]
                ) as reserve:
                    reserve.set_attribute("db.rows", 1500)
                    reserve.set_attribute("inventory.ratio", 0.75)
        trace_id = f"{root.get_span_context().trace_id:032x}"
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()
    finished = memory.get_finished_spans()
    spans = [s for s in finished if f"{s.context.trace_id:032x}" == trace_id]
    return ExportedTrace(trace_id, spans, [s for s in finished if s not in spans])


def set_tracer_provider_noop() -> None:
    """The SDK warns when the global provider is replaced; tests only use explicit providers."""
    trace.set_tracer_provider(trace.NoOpTracerProvider())
