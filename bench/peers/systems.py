"""The systems compared, each started by the bench as a child of its own on the dedicated node.

Every system has its own index prefix, its own ingest endpoint (protocol, path, the answer that means
"accepted") and the API its queries go through (``jaeger``: ``/api/traces``, ``/api/services``,
``/api/dependencies``; ``zipkin``: ``/api/v2/...``). Each repeat starts a fresh process and ends by
deleting the system's indices, so no cache of a previous repeat (written services, templates, JIT)
survives into the next except Elasticsearch's own.
"""

from __future__ import annotations

import signal
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bench import es, procs, service
from bench.ingest import check_otlp
from bench.loadgen import Check
from bench.peers import corpus
from devstack import launch

START_TIMEOUT_S = 120.0
JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_PACKAGE = f"{JAEGER_MODULE}/cmd/jaeger"
JAEGER_VERSION = "v1.75.0"
ZIPKIN_HEAP = "1g"
# The settings real-servers.md found to make Zipkin 3.6.1 store a 200k-span burst whole.
ZIPKIN_THROTTLE = {
    "STORAGE_THROTTLE_ENABLED": "true",
    "STORAGE_THROTTLE_MIN_CONCURRENCY": "4",
    "STORAGE_THROTTLE_MAX_CONCURRENCY": "4",
    "STORAGE_THROTTLE_MAX_QUEUE_SIZE": "1000",
}


def check_otlp_accepted(status: int, body: bytes) -> str | None:
    """200 with nothing rejected: Jaeger's collector answers a ``partial_success`` that rejects 0 spans."""
    if status == 200 and body:
        partial = ExportTraceServiceResponse.FromString(body).partial_success
        if partial.rejected_spans == 0 and not partial.error_message:
            return None
    return check_otlp(status, body)


def check_zipkin(status: int, body: bytes) -> str | None:
    return None if status == 202 else f"HTTP {status}: {body[:300]!r}"


@dataclass(frozen=True)
class Ingest:
    port: int
    path: str
    content_type: str
    check: Check


class System(ABC):
    key: str
    label: str
    protocol: str
    dialect: str
    prefix: str

    def __init__(self, es_url: str) -> None:
        self.es_url = es_url
        self.folder = Path(tempfile.mkdtemp(prefix=f"bench-peers-{self.key}-"))

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def pids(self) -> list[int]: ...

    @abstractmethod
    def ingest(self) -> Ingest: ...

    @abstractmethod
    def query_port(self) -> int: ...

    @property
    @abstractmethod
    def span_pattern(self) -> str:
        """The indices that hold its spans, one document per span."""

    @property
    def index_pattern(self) -> str:
        """Every index it writes (spans, services, aggregates): what its disk figure counts."""
        return f"{self.prefix}-*"

    def cpu_seconds(self) -> float:
        return procs.total_cpu(self.pids())

    def peak_rss_mib(self) -> float:
        return sum(_vm_hwm_kib(pid) for pid in self.pids()) / 1024

    def drop(self) -> None:
        es.delete_indices(self.es_url, self.index_pattern)


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Tracesearch(System):
    """The service under gunicorn, direct sink, as ``make bench`` runs it; queried through its Jaeger API."""

    dialect = "jaeger"

    def __init__(self, es_url: str, protocol: str, workers: int, threads: int) -> None:
        self.protocol = protocol
        self.key = f"tracesearch-{protocol}"
        self.label = "tracesearch (OTLP)" if protocol == corpus.OTLP else "tracesearch (Zipkin JSON)"
        self.prefix = f"peers-ts-{protocol}"
        self.workers, self.threads = workers, threads
        self.running: service.Service | None = None
        super().__init__(es_url)

    def start(self) -> None:
        self.running = service.start(self.es_url, self.prefix, self.workers, self.threads)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def _running(self) -> service.Service:
        if self.running is None:
            raise RuntimeError(f"{self.label} is not running")
        return self.running

    def pids(self) -> list[int]:
        return self._running().pids

    def cpu_seconds(self) -> float:
        return self._running().cpu_seconds()  # checks that no worker was replaced meanwhile

    def ingest(self) -> Ingest:
        port = self._running().port
        if self.protocol == corpus.OTLP:
            return Ingest(port, "/v1/traces", "application/x-protobuf", check_otlp_accepted)
        return Ingest(port, "/api/v2/spans", "application/json", check_zipkin)

    def query_port(self) -> int:
        return self._running().port

    @property
    def span_pattern(self) -> str:
        return f"{self.prefix}-span-*"

    def drop(self) -> None:
        es.drop_prefix(self.es_url, self.prefix)  # spans, aggregates and templates
        es.delete_indices(self.es_url, self.index_pattern)  # anything else it created under its prefix


class ChildSystem(System):
    """A peer run from one command line; ready when ``ready_path`` answers 200 on ``ready_port``."""

    child: launch.Child | None = None

    @abstractmethod
    def command(self) -> launch.Command: ...

    @abstractmethod
    def ready_probe(self) -> tuple[int, str]: ...

    def start(self) -> None:
        log = self.folder / f"{self.key}.log"
        child = launch.Child(launch.spawn(self.command(), log), log)
        port, path = self.ready_probe()

        def ready() -> bool:
            answer = launch.http_get(port, path)
            return answer is not None and answer[0] == 200

        launch.await_ready(child, ready, START_TIMEOUT_S, self.label)
        self.child = child

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(signal.SIGTERM, timeout=30)
            self.child = None

    def pids(self) -> list[int]:
        if self.child is None:
            raise RuntimeError(f"{self.label} is not running")
        return [self.child.pid]


class Jaeger(ChildSystem):
    """Jaeger v2 (``cmd/jaeger``): OTLP receiver, batch processor, Elasticsearch storage, query extension."""

    key = "jaeger"
    label = "Jaeger v2"
    protocol = corpus.OTLP
    dialect = "jaeger"
    prefix = "peers-jaeger"

    def __init__(self, es_url: str, binary: Path, es_major: int) -> None:
        super().__init__(es_url)
        self.binary = binary
        self.es_major = es_major
        self.otlp_port, self.http_port = launch.free_port(), launch.free_port()
        self.grpc_port, self.health_port = launch.free_port(), launch.free_port()

    def config(self) -> str:
        return render_jaeger_config(
            self.es_url, self.es_major, self.prefix, self.otlp_port, self.http_port, self.grpc_port, self.health_port
        )

    def command(self) -> launch.Command:
        path = self.folder / "jaeger.yaml"
        path.write_text(self.config())
        return launch.Command([str(self.binary), "--config", str(path)], {})

    def ready_probe(self) -> tuple[int, str]:
        return self.http_port, "/api/services"

    def ingest(self) -> Ingest:
        return Ingest(self.otlp_port, "/v1/traces", "application/x-protobuf", check_otlp_accepted)

    def query_port(self) -> int:
        return self.http_port

    @property
    def span_pattern(self) -> str:
        return f"{self.prefix}-jaeger-span-*"


def render_jaeger_config(
    es_url: str, es_major: int, prefix: str, otlp_port: int, http_port: int, grpc_port: int, health_port: int
) -> str:
    """Jaeger's documented Elasticsearch layout (cmd/jaeger/config-elasticsearch.yaml) on our ports.

    ``version`` is given and the client's health check (``HEAD /``) is off: this Elasticsearch lacks ``/``."""
    indices = "\n".join(
        f"            {kind}: {{shards: 1, replicas: 0}}" for kind in ("spans", "services", "dependencies", "sampling")
    )
    return f"""service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter]}}
  telemetry:
    metrics: {{level: none}}
extensions:
  healthcheckv2: {{use_v2: true, http: {{endpoint: 127.0.0.1:{health_port}}}}}
  jaeger_query:
    storage: {{traces: es_main}}
    http: {{endpoint: 127.0.0.1:{http_port}}}
    grpc: {{endpoint: 127.0.0.1:{grpc_port}}}
  jaeger_storage:
    backends:
      es_main:
        elasticsearch:
          server_urls: [{es_url}]
          version: {es_major}
          disable_health_check: true
          indices:
            index_prefix: {prefix}
{indices}
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{otlp_port}}}}}}}
processors: {{batch: {{}}}}
exporters:
  jaeger_storage_exporter: {{trace_storage: es_main}}
"""


class Zipkin(ChildSystem):
    """Zipkin server 3.6.1 (the exec jar), its HTTP collector and API on one port, behind the ``GET /`` shim."""

    protocol = corpus.ZIPKIN
    dialect = "zipkin"

    def __init__(self, es_url: str, shim_url: str, jar: Path, java: Path, throttle: bool) -> None:
        self.throttle = throttle
        self.key = "zipkin-throttled" if throttle else "zipkin"
        self.label = "Zipkin (storage throttle)" if throttle else "Zipkin (defaults)"
        self.prefix = "peers-zipkin-throttle" if throttle else "peers-zipkin-default"
        super().__init__(es_url)
        self.shim_url, self.jar, self.java = shim_url, jar, java
        self.port = launch.free_port()

    def command(self) -> launch.Command:
        env = {
            "STORAGE_TYPE": "elasticsearch",
            "ES_HOSTS": self.shim_url,
            "ES_INDEX": self.prefix,
            "ES_INDEX_SHARDS": "1",
            "ES_INDEX_REPLICAS": "0",
            "ES_TEMPLATE_PRIORITY": "0",
            "QUERY_PORT": str(self.port),
            **(ZIPKIN_THROTTLE if self.throttle else {}),
        }
        argv = [str(self.java), f"-Xmx{ZIPKIN_HEAP}", "-jar", str(self.jar)]
        return launch.Command(argv, env, unset=("JAVA_TOOL_OPTIONS",))

    def ready_probe(self) -> tuple[int, str]:
        return self.port, "/health"

    def ingest(self) -> Ingest:
        return Ingest(self.port, "/api/v2/spans", "application/json", check_zipkin)

    def query_port(self) -> int:
        return self.port

    @property
    def span_pattern(self) -> str:
        return f"{self.prefix}-span-*"
