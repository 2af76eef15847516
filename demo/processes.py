"""Start and stop the demo's services as child processes (POSIX only): Python, Java and Node.js.

Python services get a listening socket bound by the parent (no port race); the Java and Node.js
ones get a port found free just before. Every service is pointed at tracesearch with the standard
OTEL_* variables only, as a deployment would do it, and writes ECS JSON log lines to its own file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import requests

from demo.config import HEALTH_PATH, PYTHON_RUNTIMES, SERVICES, Runtime, ServiceSpec

# So `python -m demo.servicehost` resolves even when the caller's cwd is elsewhere.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
# The Java agent instruments classes as they load: its service needs several seconds to answer.
READY_TIMEOUT_S = 90.0


class ServiceStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class Backends:
    """Where the services send spans to and reach Kafka at."""

    base_url: str
    kafka_bootstrap: str


def otel_env(spec: ServiceSpec, base_url: str) -> dict[str, str]:
    """The standard variables every OpenTelemetry SDK and agent reads, for one service."""
    attributes = {
        "service.version": spec.version,
        "service.namespace": "shop",
        "deployment.environment.name": "demo",
    }
    return {
        "OTEL_SERVICE_NAME": spec.name,
        "OTEL_RESOURCE_ATTRIBUTES": ",".join(f"{key}={value}" for key, value in attributes.items()),
        "OTEL_EXPORTER_OTLP_ENDPOINT": base_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{base_url}/api/v2/spans",
        "OTEL_TRACES_EXPORTER": spec.exporter,
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        # 1 s (default 5 s) lets traces show up while the demo still runs.
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
    }


def _python_env(spec: ServiceSpec, base_url: str, log_file: Path) -> dict[str, str]:
    # The user's OTEL_* settings (a sampler, another endpoint, SDK disabled) would silently
    # change what the services export.
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(otel_env(spec, base_url))
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")])),
            "TRACESEARCH_INSTRUMENT_LOGS": str(log_file),
            "OTEL_PYTHON_FLASK_EXCLUDED_URLS": HEALTH_PATH.strip("/"),
            # Stable HTTP semantic conventions (http.request.method, http.response.status_code).
            "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
        }
    )
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


Prepare = Callable[[], None]


def prepare_runtimes(specs: Sequence[ServiceSpec], log: Callable[[str], None]) -> None:
    """Build the Java service and install the Node.js one (cached after the first run)."""
    from devstack import demo_java, demo_node

    runtimes = {spec.runtime for spec in specs}
    if Runtime.JAVA_AGENT in runtimes:
        log("Preparing the Java service (first run: Maven fetches the agent and builds, about a minute) ...")
        demo_java.ensure_inventory()
    if Runtime.NODE_SDK in runtimes:
        log("Preparing the Node.js service (first run: npm ci, about 15 s) ...")
        demo_node.ensure_recommendations()


class ServiceCluster:
    """Context manager: the services run inside the ``with`` block and no longer."""

    def __init__(self, backends: Backends, logs_dir: Path, specs: Sequence[ServiceSpec] = SERVICES) -> None:
        self._backends = backends
        self._specs = tuple(specs)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs_dir = logs_dir
        self.urls: dict[str, str] = {}

    def __enter__(self) -> ServiceCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.json"

    def start(self, ready_timeout: float = READY_TIMEOUT_S) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        sockets = {spec.name: _listen() for spec in self._specs if spec.runtime in PYTHON_RUNTIMES}
        ports = {name: sock.getsockname()[1] for name, sock in sockets.items()}
        ports.update({spec.name: _free_port() for spec in self._specs if spec.name not in ports})
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        try:
            for spec in self._specs:
                sock = sockets.get(spec.name)
                self._procs[spec.name] = self._launch(spec, ports[spec.name], sock)
        finally:
            # The children hold their own copies; ours would keep the ports alive
            # (and accepting into a dead backlog) after the children are gone.
            for sock in sockets.values():
                sock.close()
        self._wait_ready(time.monotonic() + ready_timeout)

    def _launch(self, spec: ServiceSpec, port: int, sock: socket.socket | None) -> subprocess.Popen[bytes]:
        argv, env, fds = self._command(spec, port, sock)
        stderr = self.logs_dir / f"{spec.name}.stderr"
        with stderr.open("ab") as errors:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors, pass_fds=fds, env=env
            )

    def _command(
        self, spec: ServiceSpec, port: int, sock: socket.socket | None
    ) -> tuple[list[str], dict[str, str], tuple[int, ...]]:
        base, log_file = self._backends.base_url, self.log_file(spec.name)
        peer_url = self.urls.get(spec.calls[0], "") if spec.calls else ""
        if spec.runtime is Runtime.JAVA_AGENT:
            from devstack import demo_java

            argv, env = demo_java.inventory_command(
                port, log_file, peer_url, self._backends.kafka_bootstrap, otel_env(spec, base)
            )
            return argv, env, ()
        if spec.runtime is Runtime.NODE_SDK:
            from devstack import demo_node

            argv, env = demo_node.recommendations_command(port, log_file, peer_url, otel_env(spec, base))
            return argv, env, ()
        assert sock is not None
        fd = sock.fileno()
        host = [sys.executable, "-m", "demo.servicehost"]
        if spec.runtime is Runtime.PYTHON_ZERO_CODE:
            host = [str(Path(sys.executable).with_name("opentelemetry-instrument")), *host]
        argv = [
            *host,
            "--service", spec.name,
            "--fd", str(fd),
            "--parent-pid", str(os.getpid()),
            "--kafka", self._backends.kafka_bootstrap,
            *(f"--peer={peer}={self.urls[peer]}" for peer in spec.calls),
        ]  # fmt: skip
        return argv, _python_env(spec, base, log_file), (fd,)

    def _wait_ready(self, deadline: float) -> None:
        pending = dict(self.urls)
        while pending:
            for name, url in list(pending.items()):
                if self._procs[name].poll() is not None:
                    raise ServiceStartError(f"{name} exited during startup: {self.stderr_tail(name)}")
                try:
                    if requests.get(url + HEALTH_PATH, timeout=0.5).ok:
                        del pending[name]
                except requests.RequestException:
                    pass
            if pending and time.monotonic() > deadline:
                raise ServiceStartError(f"not ready in time: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.1)

    def stderr_tail(self, name: str, chars: int = 2000) -> str:
        path = self.logs_dir / f"{name}.stderr"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every service (each flushes its spans); their exit codes."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name, proc in self._procs.items():
            try:
                codes[name] = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        self._procs.clear()
        return codes
