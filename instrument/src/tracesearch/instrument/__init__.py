"""Connect a Python service to tracesearch with OpenTelemetry: zero code or one call.

Zero code::

    OTEL_SERVICE_NAME=shop OTEL_EXPORTER_OTLP_ENDPOINT=http://tracesearch:4318 \\
        opentelemetry-instrument python app.py

One call, before Flask is imported (instrumenting replaces the ``flask.Flask`` class)::

    import tracesearch.instrument
    tracesearch.instrument.setup(service_name="shop", endpoint="http://tracesearch:4318")
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from importlib.util import find_spec
from typing import Any

from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.util.types import AttributeValue

from tracesearch.instrument.logs import EcsFormatter, ecs_handler
from tracesearch.instrument.options import Options, parse_level
from tracesearch.instrument.propagation import TracesearchPropagator
from tracesearch.instrument.sampling import JaegerRemoteSampler, remote_sampler
from tracesearch.instrument.sdk import configure

__all__ = ["EcsFormatter", "JaegerRemoteSampler", "TracesearchPropagator", "ecs_handler", "remote_sampler", "setup"]

_lock = threading.Lock()
_provider: TracerProvider | None = None


def setup(
    service_name: str | None = None,
    *,
    service_version: str | None = None,
    environment: str | None = None,
    endpoint: str | None = None,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    logs: str | None = None,
    log_level: int | str | None = None,
    sampler: Sampler | str | None = None,
    app: Any = None,
) -> TracerProvider:
    """Configure the SDK for tracesearch and instrument Flask, requests and logging.

    Arguments left out fall back to the OpenTelemetry variables (OTEL_SERVICE_NAME,
    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_BSP_*, OTEL_TRACES_SAMPLER, ...). ``logs`` ("stderr",
    "stdout" or a file path; default $TRACESEARCH_INSTRUMENT_LOGS) adds a root handler writing ECS
    JSON lines with trace.id and span.id.
    ``sampler``: ``"remote"`` follows the strategies tracesearch serves for this service (Jaeger's
    remote sampling, parent-based: see tracesearch.instrument.sampling), or any SDK Sampler; None
    leaves it to OTEL_TRACES_SAMPLER (``parentbased_jaeger_remote`` is the remote one).
    Flask apps made from ``flask.Flask`` imported after this call are traced; pass ``app`` for one
    created before.
    A second call returns the provider of the first: the SDK allows one per process.
    """
    global _provider
    with _lock:
        if _provider is None:
            from_env = Options.from_env()
            options = Options(
                service_name=service_name,
                service_version=service_version,
                environment=environment,
                endpoint=endpoint,
                resource_attributes=resource_attributes or {},
                logs=logs or from_env.logs,
                log_level=from_env.log_level if log_level is None else parse_level(log_level),
            )
            _provider = configure(options, sampler=_sampler(sampler, options))
            _instrument(_provider, app)
        return _provider


def _sampler(sampler: Sampler | str | None, options: Options) -> Sampler | None:
    if sampler is None or isinstance(sampler, Sampler):
        return sampler
    if sampler != "remote":
        raise ValueError(f"sampler: {sampler!r} is neither a Sampler nor 'remote'")
    service = options.service_name or os.environ.get("OTEL_SERVICE_NAME") or "unknown_service"
    endpoint = options.endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
    return remote_sampler(service, endpoint, os.environ.get("OTEL_TRACES_SAMPLER_ARG"))


def _instrument(provider: TracerProvider, app: Any) -> None:
    LoggingInstrumentor().instrument(tracer_provider=provider, inject_trace_context=True, set_logging_format=False)
    # A service without Flask or requests (a worker, a CLI) still gets traces and log ids.
    if find_spec("requests") is not None:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().instrument(tracer_provider=provider)
    if find_spec("flask") is not None:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument(tracer_provider=provider)
        if app is not None:
            FlaskInstrumentor.instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]
