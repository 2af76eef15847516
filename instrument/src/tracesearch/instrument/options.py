"""What one service tells tracesearch about itself, from arguments or the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.util.types import AttributeValue

# Not OTEL_*: these configure this package, not the SDK. TRACESEARCH_INSTRUMENT_LOGS is
# "stderr", "stdout" or a file path; unset means the application's own logging is left alone.
LOGS_ENV = "TRACESEARCH_INSTRUMENT_LOGS"
LOG_LEVEL_ENV = "TRACESEARCH_INSTRUMENT_LOG_LEVEL"


@dataclass(frozen=True)
class Options:
    service_name: str | None = None
    service_version: str | None = None
    environment: str | None = None
    # tracesearch's base URL (like OTEL_EXPORTER_OTLP_ENDPOINT); None: the OTel environment decides.
    endpoint: str | None = None
    resource_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    logs: str | None = None
    log_level: int = logging.INFO

    @classmethod
    def from_env(cls) -> Options:
        """The zero-code path: the service is described by OTEL_* variables the SDK reads itself."""
        return cls(logs=os.environ.get(LOGS_ENV) or None, log_level=parse_level(os.environ.get(LOG_LEVEL_ENV)))

    def resource(self) -> dict[str, AttributeValue]:
        """Explicit values win over OTEL_RESOURCE_ATTRIBUTES (Resource.create merges them last)."""
        attributes = dict(self.resource_attributes)
        named = {
            "service.name": self.service_name,
            "service.version": self.service_version,
            "deployment.environment.name": self.environment,
        }
        attributes.update({key: value for key, value in named.items() if value})
        return attributes

    def traces_url(self) -> str | None:
        return None if self.endpoint is None else self.endpoint.rstrip("/") + "/v1/traces"


def parse_level(value: str | int | None) -> int:
    if value is None or value == "":
        return logging.INFO
    if isinstance(value, int):
        return value
    level = logging.getLevelName(value.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"{LOG_LEVEL_ENV}: unknown log level {value!r}")
    return level
