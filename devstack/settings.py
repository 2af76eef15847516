"""Every environment variable the dev stack reads, parsed in one place.

``Settings.from_env`` is pure (it takes the mapping), so tests can build
settings without touching ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from devstack.errors import DevstackError

LOCALHOST = "127.0.0.1"

DEFAULT_ES_VERSION = "8.19.21"
DEFAULT_ES_PORT = 9200
DEFAULT_ES_HEAP = "512m"
DEFAULT_KAFKA_PORT = 9092
DEFAULT_SERVICE_PORT = 4318

# ES derives the transport port from the HTTP port so two dev stacks with
# different TRACESEARCH_DEVSTACK_ES_PORT values never collide on 9300.
MAX_PORT = 65535
BASE_ES_HTTP_PORT = 9200
BASE_ES_TRANSPORT_PORT = 9300

ENV_ES_VERSION = "TRACESEARCH_DEVSTACK_ES_VERSION"
ENV_ES_PORT = "TRACESEARCH_DEVSTACK_ES_PORT"
ENV_ES_HEAP = "TRACESEARCH_DEVSTACK_ES_HEAP"
ENV_JAVA21_HOME = "TRACESEARCH_DEVSTACK_JAVA21_HOME"
ENV_KAFKA_PORT = "TRACESEARCH_DEVSTACK_KAFKA_PORT"
ENV_ES_URL = "TRACESEARCH_ES_URL"
ENV_KAFKA_BOOTSTRAP = "TRACESEARCH_KAFKA_BOOTSTRAP"
ENV_SERVICE_PORT = "TRACESEARCH_PORT"
ENV_PIPELINE = "TRACESEARCH_PIPELINE"
ENV_JAVA_HOME = "JAVA_HOME"

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_HEAP_RE = re.compile(r"^\d+[kKmMgG]$")


@dataclass(frozen=True)
class Settings:
    es_version: str = DEFAULT_ES_VERSION
    es_port: int = DEFAULT_ES_PORT
    es_heap: str = DEFAULT_ES_HEAP
    # None means "the dev stack runs its own"; see _external().
    es_external_url: str | None = None
    kafka_port: int = DEFAULT_KAFKA_PORT
    kafka_external_bootstrap: str | None = None
    service_port: int = DEFAULT_SERVICE_PORT
    # `make up` runs the Kafka topology unless TRACESEARCH_PIPELINE=direct says otherwise.
    pipeline: str = "kafka"
    java_home: str | None = None
    java21_home: str | None = None
    # Lucene through mmap, Elasticsearch's default (es_config.render_elasticsearch_yml): the bench nodes' choice.
    es_mmap: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        es_version = env.get(ENV_ES_VERSION, "").strip() or DEFAULT_ES_VERSION
        if not _VERSION_RE.match(es_version):
            raise DevstackError(f"{ENV_ES_VERSION}={es_version!r} is not a version like 8.19.21")
        es_heap = env.get(ENV_ES_HEAP, "").strip() or DEFAULT_ES_HEAP
        if not _HEAP_RE.match(es_heap):
            raise DevstackError(f"{ENV_ES_HEAP}={es_heap!r} is not a JVM size like 512m or 1g")
        es_port = _port(env, ENV_ES_PORT, DEFAULT_ES_PORT)
        kafka_port = _port(env, ENV_KAFKA_PORT, DEFAULT_KAFKA_PORT)
        settings = cls(
            es_version=es_version,
            es_port=es_port,
            es_heap=es_heap,
            es_external_url=_external(env.get(ENV_ES_URL), own=f"http://{LOCALHOST}:{es_port}"),
            kafka_port=kafka_port,
            kafka_external_bootstrap=_external(env.get(ENV_KAFKA_BOOTSTRAP), own=f"{LOCALHOST}:{kafka_port}"),
            service_port=_port(env, ENV_SERVICE_PORT, DEFAULT_SERVICE_PORT),
            pipeline=(env.get(ENV_PIPELINE, "").strip().lower() or "kafka"),
            java_home=env.get(ENV_JAVA_HOME) or None,
            java21_home=env.get(ENV_JAVA21_HOME) or None,
        )
        _check_port_plan(settings)
        return settings

    @property
    def es_major(self) -> int:
        return int(self.es_version.split(".", 1)[0])

    @property
    def es_transport_port(self) -> int:
        return BASE_ES_TRANSPORT_PORT + (self.es_port - BASE_ES_HTTP_PORT)

    @property
    def es_local_url(self) -> str:
        return f"http://{LOCALHOST}:{self.es_port}"

    @property
    def es_url(self) -> str:
        return self.es_external_url or self.es_local_url

    @property
    def kafka_controller_port(self) -> int:
        return self.kafka_port + 1

    @property
    def kafka_local_bootstrap(self) -> str:
        return f"{LOCALHOST}:{self.kafka_port}"

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_external_bootstrap or self.kafka_local_bootstrap

    @property
    def service_url(self) -> str:
        return f"http://{LOCALHOST}:{self.service_port}"

    @property
    def kafka_pipeline(self) -> bool:
        return self.pipeline == "kafka"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise DevstackError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= port <= MAX_PORT:
        raise DevstackError(f"{name}={port} is outside 1..{MAX_PORT}")
    return port


def _external(value: str | None, *, own: str) -> str | None:
    """The external endpoint from the environment, or None for "run our own".

    ``python -m devstack env`` exports the dev stack's own URLs under these
    very names; a shell that evaluated it must not make the dev stack believe
    its own Elasticsearch/Kafka is someone else's (``down`` would then leave
    them running). So the dev stack's own address does not count as external.
    """
    if value is None or not value.strip():
        return None
    value = value.strip().rstrip("/")
    return None if value == own else value


def _check_port_plan(settings: Settings) -> None:
    """Reject port choices that would make two listeners collide."""
    ports = {
        f"{ENV_ES_PORT} (ES HTTP)": settings.es_port,
        "ES transport (HTTP port + 100)": settings.es_transport_port,
        f"{ENV_KAFKA_PORT} (Kafka broker)": settings.kafka_port,
        "Kafka controller (broker port + 1)": settings.kafka_controller_port,
        f"{ENV_SERVICE_PORT} (service)": settings.service_port,
    }
    for label, port in ports.items():
        if not 1 <= port <= MAX_PORT:
            raise DevstackError(f"{label} would be {port}, outside 1..{MAX_PORT}")
    seen: dict[int, str] = {}
    for label, port in ports.items():
        if port in seen:
            raise DevstackError(f"port {port} is planned twice: {seen[port]} and {label}")
        seen[port] = label
