"""The one SDK configuration that `setup()` and the `opentelemetry-instrument` distro share."""

from __future__ import annotations

import logging
import os

from opentelemetry import metrics, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk._configuration import _initialize_components
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

from tracesearch.instrument.logs import ecs_handler
from tracesearch.instrument.options import Options
from tracesearch.instrument.propagation import TracesearchPropagator

# tracesearch takes traces over OTLP/HTTP (protobuf); it has no metrics or logs endpoint, so
# those exporters would only fail. Defaults only: a variable the user set always wins.
ENV_DEFAULTS = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_PROPAGATORS": "tracesearch",
    # The logging instrumentation would otherwise add a second, OTLP-bound handler to the root
    # logger; log lines reach Elasticsearch as ECS JSON through the team's shipper instead.
    "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION": "false",
}


def apply_env_defaults() -> None:
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def configure(
    options: Options, *, auto_instrumentation_version: str | None = None, sampler: Sampler | None = None
) -> TracerProvider:
    """Install the tracer provider, exporter, propagator and (if asked) the ECS log handler."""
    apply_env_defaults()
    if os.environ["OTEL_PROPAGATORS"].strip() == "tracesearch":
        # opentelemetry.propagate may have read OTEL_PROPAGATORS before the defaults were set.
        propagate.set_global_textmap(TracesearchPropagator())
    url = options.traces_url()
    _no_unread_metrics()
    _initialize_components(
        auto_instrumentation_version=auto_instrumentation_version,
        resource_attributes=options.resource(),
        sampler=sampler,  # None: OTEL_TRACES_SAMPLER decides (parentbased_jaeger_remote included)
        exporter_args_map={OTLPSpanExporter: {"endpoint": url}} if url else None,
    )
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # OTEL_SDK_DISABLED, or a provider set before us
        raise RuntimeError(f"tracesearch.instrument: another tracer provider is installed ({type(provider).__name__})")
    if options.logs:
        _log_to(options, provider)
    return provider


def _no_unread_metrics() -> None:
    """With no metrics exporter, install the no-op meter provider before the SDK installs its own.

    The SDK's would have no reader, yet Flask's and requests' instrumentations record three
    measurements per request into it: 13-22 µs a request for nothing (make bench, section 3).
    """
    if os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() != "none":
        return
    metrics.set_meter_provider(NoOpMeterProvider())
    # The SDK then tries to install its own, which is refused with a warning that would only confuse.
    logging.getLogger("opentelemetry.metrics._internal").addFilter(_RefusedOverride())


class _RefusedOverride(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Overriding of current MeterProvider")


def _log_to(options: Options, provider: TracerProvider) -> None:
    service = provider.resource.attributes.get("service.name")
    root = logging.getLogger()
    root.addHandler(ecs_handler(options.logs or "stderr", service_name=str(service) if service else None))
    if root.level > options.log_level or root.level == logging.NOTSET:
        root.setLevel(options.log_level)
