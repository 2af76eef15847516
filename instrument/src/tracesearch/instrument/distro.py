"""Zero code: the entry points `opentelemetry-instrument` discovers.

``pip install tracesearch-instrument`` and run ``opentelemetry-instrument python app.py`` with
``OTEL_SERVICE_NAME`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` (tracesearch's URL). The distro sets the
environment defaults; the configurator installs the SDK; the launcher then instruments every
library whose instrumentation is installed (Flask, requests and logging come with this package).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

# The module is marked `# type: ignore` upstream, so mypy sees none of its names.
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

from tracesearch.instrument.options import Options
from tracesearch.instrument.sdk import apply_env_defaults, configure

LOGGING_INSTRUMENTATION = "logging"


class TracesearchDistro(BaseDistro):  # type: ignore[misc]
    def _configure(self, **kwargs: Any) -> None:
        apply_env_defaults()

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        if entry_point.name == LOGGING_INSTRUMENTATION:
            # Stamp trace ids on every record without replacing the application's log format.
            kwargs.update(inject_trace_context=True, set_logging_format=False)
        entry_point.load()().instrument(**kwargs)


class TracesearchConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        configure(Options.from_env(), auto_instrumentation_version=kwargs.get("auto_instrumentation_version"))
