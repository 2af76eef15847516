"""Read every header a neighbour may speak; write the W3C ones.

Services in one fleet rarely agree: a Zipkin-era service sends B3, a Jaeger-client one
``uber-trace-id``. Extracting all of them keeps such a hop inside the trace, while injecting
only W3C tracecontext and baggage keeps outgoing requests small and standard.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


class TracesearchPropagator(TextMapPropagator):
    """Extract Jaeger, B3 (single and multi) and W3C; inject W3C tracecontext and baggage."""

    def __init__(self) -> None:
        self._w3c = TraceContextTextMapPropagator()
        self._baggage = W3CBaggagePropagator()
        # B3MultiFormat also reads the single `b3` header.
        self._others: list[TextMapPropagator] = [JaegerPropagator(), B3MultiFormat()]
        self._injectors: list[TextMapPropagator] = [self._w3c, self._baggage]

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        context = context if context is not None else Context()
        extracted = self._w3c.extract(carrier, context, getter)
        # W3C wins when a request carries several; only without it are the others read (and paid for).
        if not trace.get_current_span(extracted).get_span_context().is_valid:
            for propagator in self._others:
                extracted = propagator.extract(carrier, extracted, getter)
        return self._baggage.extract(carrier, extracted, getter)

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        for propagator in self._injectors:
            propagator.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        # The keys inject writes (what CORS and header allow-lists need), not those extract reads.
        return set().union(*(propagator.fields for propagator in self._injectors))
