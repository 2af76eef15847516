"""The real Zipkin server (``io.zipkin:zipkin-server:3.6.1:exec``), to check our Zipkin API against.

It runs from the Maven Central jar with in-memory storage, on a free loopback port of its own, as a
child of the test process (it dies with it); parity tests send it the same spans as tracesearch and ask
both the same question. The jar is the one the dev stack fetches for Lens (``devstack.lens``): same
coordinates, same file in ``.devstack/downloads/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from devstack import lens, locks
from devstack.launch import Command, LaunchError, ServiceProcess, await_ready, free_port, spawn
from devstack.maven import copy_artifact
from devstack.settings import LOCALHOST

START_TIMEOUT_S = 120.0
# Few spans and few requests: the C1 compiler and the serial collector start in ~6 s instead of ~10 s.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m")


def zipkin_command(jar: Path, port: int, settings: Mapping[str, str]) -> Command:
    """Zipkin with in-memory storage listening on ``port`` of the loopback interface only.

    ``settings`` are Zipkin's own environment variables (``AUTOCOMPLETE_KEYS``...). Armeria's port list
    is given whole on the command line: Spring Boot replaces a list, it does not merge one.
    """
    java = shutil.which("java")
    if java is None:
        raise LaunchError("java not found: the real Zipkin server needs Java 17+ on PATH")
    argv = [
        java,
        *JVM_OPTIONS,
        "-jar",
        str(jar),
        f"--armeria.ports[0].ip={LOCALHOST}",
        f"--armeria.ports[0].port={port}",
        "--armeria.ports[0].protocols[0]=http",
    ]
    env = {"STORAGE_TYPE": "mem", "QUERY_PORT": str(port), "SELF_TRACING_ENABLED": "false", **settings}
    return Command(argv, env)


def start_zipkin(folder: Path, settings: Mapping[str, str]) -> ServiceProcess:
    """A running Zipkin server (its ``/health`` answers 200); ``stop()`` it after."""
    port = free_port()
    log_path = folder / f"zipkin-{port}.log"
    # Lens's fetch deletes the shared jar once it has taken Lens's files out (Maven keeps a copy in ~/.m2,
    # so copying it back takes seconds): hold its lock until the server has read the jar.
    with locks.held(lens.NAME):
        jar = lens.jar_path()
        copy_artifact(lens.ARTIFACT, jar)
        server = ServiceProcess(spawn(zipkin_command(jar, port, settings), log_path), log_path, port)
        await_ready(server, server.healthy, START_TIMEOUT_S, f"the Zipkin server on port {port}")
    return server
