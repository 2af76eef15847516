"""A single-node Kafka (KRaft, broker+controller) for development and tests.

Python API (used by pytest fixtures)::

    bootstrap = devstack.kafka.ensure_running()   # "127.0.0.1:9092"
    devstack.kafka.stop()                         # e.g. to test outages
    bootstrap = devstack.kafka.start()            # same as ensure_running

With ``TRACESEARCH_KAFKA_BOOTSTRAP`` set, nothing is started.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from devstack import java, kafka_config, locks, maven, process
from devstack.component import ComponentStatus, State
from devstack.errors import DevstackError, ExternalComponentError
from devstack.health import port_open, wait_until
from devstack.paths import downloads_dir, state_dir
from devstack.settings import ENV_KAFKA_BOOTSTRAP, ENV_KAFKA_PORT, LOCALHOST, Settings

log = logging.getLogger(__name__)

NAME = "kafka"
HEAP = "512m"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Layout:
    # Jars are a cache like the ES zip; runtime files are per clone.
    dist: Path
    root: Path
    broker_port: int

    @property
    def pom(self) -> Path:
        return self.dist / "pom.xml"

    @property
    def libs(self) -> Path:
        return self.dist / "libs"

    @property
    def server_properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j2_properties(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def data(self) -> Path:
        # Per broker port: `format --standalone` records the controller's
        # address in the metadata log, so a node moved to other ports needs
        # fresh storage.
        return self.root / f"data-{self.broker_port}"

    @property
    def log_file(self) -> Path:
        return self.root / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "kafka.pid"


def layout(settings: Settings) -> Layout:
    return Layout(
        dist=downloads_dir() / f"kafka-{kafka_config.KAFKA_VERSION}",
        root=state_dir() / NAME,
        broker_port=settings.kafka_port,
    )


def ensure_running(settings: Settings | None = None) -> str:
    """Start Kafka unless a healthy broker already serves; return the bootstrap."""
    settings = settings or Settings.from_env()
    if settings.kafka_external_bootstrap:
        return _check_external(settings.kafka_external_bootstrap)
    with locks.held(NAME):
        return _ensure_local(settings)


def start(settings: Settings | None = None) -> str:
    """Same as ``ensure_running``: starting a running broker is a no-op."""
    return ensure_running(settings)


def stop(settings: Settings | None = None) -> bool:
    """Stop the dev-stack broker; return whether one was running."""
    settings = settings or Settings.from_env()
    if settings.kafka_external_bootstrap:
        raise ExternalComponentError(
            f"{ENV_KAFKA_BOOTSTRAP} is set ({settings.kafka_external_bootstrap}): the "
            "dev stack did not start that Kafka and will not stop it"
        )
    return stop_local(settings)


def stop_local(settings: Settings | None = None) -> bool:
    """Stop this clone's broker if it runs, even with TRACESEARCH_KAFKA_BOOTSTRAP
    set (for `down`: a broker started before it was set is ours all the same)."""
    settings = settings or Settings.from_env()
    with locks.held(NAME):
        stopped = process.stop(_spec(settings, layout(settings)))
    if not stopped and settings.kafka_external_bootstrap is None and port_open(LOCALHOST, settings.kafka_port):
        log.warning(
            "kafka: no pid file, but something listens on %s; the dev stack did not start it and leaves it alone",
            settings.kafka_local_bootstrap,
        )
    return stopped


def running_pid(settings: Settings | None = None) -> int | None:
    """The pid of this clone's broker, whatever port it was started on."""
    settings = settings or Settings.from_env()
    return process.running_pid(_spec(settings, layout(settings)))


def status(settings: Settings | None = None) -> ComponentStatus:
    settings = settings or Settings.from_env()
    bootstrap = settings.kafka_bootstrap
    external = settings.kafka_external_bootstrap is not None
    if is_healthy(bootstrap):
        return ComponentStatus(NAME, State.HEALTHY, bootstrap, external)
    if external:
        return ComponentStatus(NAME, State.UNHEALTHY, bootstrap, external)
    pid = running_pid(settings)
    if pid is not None:
        return ComponentStatus(NAME, State.UNHEALTHY, bootstrap, detail=f"pid {pid}")
    return ComponentStatus(NAME, State.STOPPED, bootstrap)


def is_healthy(bootstrap: str) -> bool:
    """True when a Kafka client can connect and list topics."""
    host, _, port = bootstrap.split(",", 1)[0].rpartition(":")
    if not port.isdigit() or not port_open(host or LOCALHOST, int(port)):
        return False  # skip the client: it logs noisy errors while retrying
    with _quiet_kafka_logging():
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="devstack-health",
                request_timeout_ms=5000,
                bootstrap_timeout_ms=5000,
            )
        except (KafkaError, OSError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()


def _check_external(bootstrap: str) -> str:
    if not wait_until(lambda: is_healthy(bootstrap), timeout=30, interval=1):
        raise DevstackError(
            f"{ENV_KAFKA_BOOTSTRAP}={bootstrap}: no Kafka broker answers there; fix "
            "it or unset it to let the dev stack run its own"
        )
    return bootstrap


def _ensure_local(settings: Settings) -> str:
    bootstrap = settings.kafka_local_bootstrap
    files = layout(settings)
    ours = _spec(settings, files)
    if process.running_pid(ours) is not None:
        process.start(ours)  # started earlier, maybe still starting: waits for health
        return bootstrap
    if port_open(LOCALHOST, settings.kafka_port):
        if wait_until(lambda: is_healthy(bootstrap), timeout=10, interval=1):
            log.info("kafka: reusing the healthy broker at %s", bootstrap)
            return bootstrap
        raise DevstackError(
            f"port {settings.kafka_port} is taken by something that is not a healthy "
            f"Kafka broker; stop it or choose another port with {ENV_KAFKA_PORT}"
        )
    runtime = java.find(java.JAVA_BASELINE, settings, purpose=f"Kafka {kafka_config.KAFKA_VERSION}")
    _install(files)
    _write_config(settings, files)
    _format_storage(files, runtime.java)
    process.start(_spec(settings, files, java_bin=str(runtime.java)))
    return bootstrap


def _spec(settings: Settings, files: Layout, *, java_bin: str = "java") -> process.ProcessSpec:
    """The broker process (``java_bin`` matters only for starting it)."""
    bootstrap = settings.kafka_local_bootstrap
    return process.ProcessSpec(
        name=NAME,
        argv=[
            java_bin,
            f"-Xms{HEAP}",
            f"-Xmx{HEAP}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={files.log4j2_properties}",
            "-cp",
            f"{files.libs}/*",
            "kafka.Kafka",
            str(files.server_properties),
        ],
        cwd=files.root,
        log_path=files.log_file,
        pid_path=files.pid_file,
        # The properties path is unique to this clone.
        marker=f"kafka.Kafka {files.server_properties}",
        marker_is_unique=True,
        health=lambda: is_healthy(bootstrap),
        start_timeout=START_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
        endpoint=bootstrap,
    )


def _install(files: Layout) -> None:
    """Resolve the broker's jars into the cache (once per dependency list)."""
    files.dist.mkdir(parents=True, exist_ok=True)
    pom = maven.render_pom("kafka-runtime", kafka_config.DEPENDENCIES)
    if not files.pom.is_file() or files.pom.read_text() != pom:
        files.pom.write_text(pom)
        # The dependency list changed: the libs folder must be redone.
        (files.libs / ".complete").unlink(missing_ok=True)
    maven.copy_runtime_dependencies(files.pom, files.libs)


def _write_config(settings: Settings, files: Layout) -> None:
    files.root.mkdir(parents=True, exist_ok=True)
    files.server_properties.write_text(
        kafka_config.render_server_properties(
            broker_port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            data_dir=files.data,
        )
    )
    files.log4j2_properties.write_text(kafka_config.render_log4j2_properties())


def _format_storage(files: Layout, java_bin: Path) -> None:
    """Format the KRaft metadata log once (meta.properties marks it done)."""
    if (files.data / "meta.properties").is_file():
        return
    log.info("kafka: formatting storage in %s", files.data)
    result = subprocess.run(
        [
            str(java_bin),
            f"-Dlog4j2.configurationFile={files.log4j2_properties}",
            "-cp",
            f"{files.libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "--ignore-formatted",
            "-t",
            kafka_config.new_cluster_id(),
            "-c",
            str(files.server_properties),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise DevstackError(
            f"kafka: formatting storage in {files.data} failed "
            f"(exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
        )


@contextlib.contextmanager
def _quiet_kafka_logging() -> Iterator[None]:
    """Silence kafka-python while probing: refused connections are expected."""
    logger = logging.getLogger("kafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)
