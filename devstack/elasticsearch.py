"""A single-node Elasticsearch for development and tests.

Python API (used by pytest fixtures)::

    url = devstack.elasticsearch.ensure_running()   # start unless healthy
    devstack.elasticsearch.stop()                   # e.g. to test outages
    url = devstack.elasticsearch.start()            # same as ensure_running

With ``TRACESEARCH_ES_URL`` set, nothing is started: ``ensure_running``
checks and returns that URL and ``stop`` refuses.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import es_config, es_dist, java, locks, pidfile, process
from devstack.component import ComponentStatus, State
from devstack.errors import DevstackError, ExternalComponentError
from devstack.health import http_json, port_open, wait_until
from devstack.paths import runtime_dir
from devstack.settings import (
    ENV_ES_PORT,
    ENV_ES_URL,
    ENV_ES_VERSION,
    LOCALHOST,
    Settings,
)
from devstack.users import ES_USER, chown_tree, ensure_system_user, is_root, readable_copy, run_as

log = logging.getLogger(__name__)

NAME = "elasticsearch"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
# `GET /` is not in the integ-test zip (module rest-root); health is the probe.
HEALTH_PATH = "/_cluster/health?wait_for_status=yellow&timeout=1s"
VERSION_PATH = "/_nodes/_local?filter_path=nodes.*.version"


@dataclass(frozen=True)
class Layout:
    """Files of the dev-stack Elasticsearch; ``root`` is per clone."""

    root: Path
    version: str
    # None when we run ES as ourselves (not root).
    user: str | None

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def home(self) -> Path:
        return self.root / f"elasticsearch-{self.version}"

    @property
    def data(self) -> Path:
        # Per major version: ES 9 upgrades ES 8 data in place, after which 8
        # can no longer read it; switching back and forth must stay possible.
        return self.root / f"data-es{self.major}"

    # Pid file, logs and marker are per major version, so an ES 8 and an ES 9 node (on two ports,
    # as `make test` runs them) are two instances, each stopped and health-checked on its own.
    @property
    def logs(self) -> Path:
        return self.root / f"logs-es{self.major}"

    @property
    def pid_file(self) -> Path:
        return self.root / f"elasticsearch-es{self.major}.pid"

    @property
    def launcher_log(self) -> Path:
        return self.root / f"launcher-es{self.major}.log"

    @property
    def server_log(self) -> Path:
        return self.logs / f"{es_config.CLUSTER_NAME}.log"

    @property
    def marker(self) -> str:
        # The server JVM's command line contains -Des.path.home=<home>, which
        # identifies our node (and this clone) unambiguously.
        return f"-Des.path.home={self.home}"


def running_pid(files: Layout) -> int | None:
    """Our node's pid: from the pid file, else found by its command line
    (the pid file may have been deleted while the node kept running)."""
    pid = pidfile.live_pid(files.pid_file, files.marker)
    if pid is None:
        pid = pidfile.find_by_marker(files.marker)
    return pid


def layout(settings: Settings) -> Layout:
    user = ES_USER if is_root() else None
    base = runtime_dir(for_other_user=user is not None)
    return Layout(root=base / NAME, version=settings.es_version, user=user)


def ensure_running(settings: Settings | None = None) -> str:
    """Start Elasticsearch unless a healthy one already serves; return its URL."""
    settings = settings or Settings.from_env()
    if settings.es_external_url:
        return _check_external(settings.es_external_url)
    with locks.held(NAME):
        return _ensure_local(settings, layout(settings))


def start(settings: Settings | None = None) -> str:
    """Same as ``ensure_running``: starting a running node is a no-op."""
    return ensure_running(settings)


def stop(settings: Settings | None = None) -> bool:
    """Stop the dev-stack node; return whether one was running."""
    settings = settings or Settings.from_env()
    if settings.es_external_url:
        raise ExternalComponentError(
            f"{ENV_ES_URL} is set ({settings.es_external_url}): the dev stack did not "
            "start that Elasticsearch and will not stop it"
        )
    with locks.held(NAME):
        files = layout(settings)
        pid = running_pid(files)
        if pid is None:
            if port_open(LOCALHOST, settings.es_port):
                log.warning(
                    "elasticsearch: no pid file, but something listens on %s; "
                    "the dev stack did not start it and leaves it alone",
                    settings.es_local_url,
                )
            return False
        log.info("elasticsearch: stopping pid %d", pid)
        process.terminate(pid, timeout=STOP_TIMEOUT)
        pidfile.remove(files.pid_file)
        return True


def status(settings: Settings | None = None) -> ComponentStatus:
    settings = settings or Settings.from_env()
    url = settings.es_url
    external = settings.es_external_url is not None
    version = running_version(url)
    healthy = version is not None and is_healthy(url)
    if external:
        state = State.HEALTHY if healthy else State.UNHEALTHY
        return ComponentStatus(NAME, state, url, external, f"version {version}" if healthy else "")
    pid = running_pid(layout(settings))
    if healthy:
        owner = f"pid {pid}" if pid is not None else "not started by this dev stack"
        return ComponentStatus(NAME, State.HEALTHY, url, detail=f"version {version}, {owner}")
    if pid is not None:
        return ComponentStatus(NAME, State.UNHEALTHY, url, detail=f"pid {pid}")
    return ComponentStatus(NAME, State.STOPPED, url)


def is_healthy(url: str) -> bool:
    health = http_json(url + HEALTH_PATH)
    return isinstance(health, dict) and health.get("status") in {"green", "yellow"}


def running_version(url: str) -> str | None:
    """The version of the node at ``url`` (``GET /`` does not exist here)."""
    info = http_json(url + VERSION_PATH)
    nodes = info.get("nodes") if isinstance(info, dict) else None
    if not isinstance(nodes, dict) or len(nodes) != 1:
        return None
    node = next(iter(nodes.values()))
    return str(node["version"]) if isinstance(node, dict) and "version" in node else None


def _check_external(url: str) -> str:
    if not wait_until(lambda: is_healthy(url), timeout=30):
        raise DevstackError(
            f"{ENV_ES_URL}={url} does not answer GET /_cluster/health with "
            "yellow/green; fix the URL or unset it to let the dev stack run its own"
        )
    return url


def _ensure_local(settings: Settings, files: Layout) -> str:
    url = settings.es_local_url
    pid = running_pid(files)
    if pid is None and port_open(LOCALHOST, settings.es_port):
        other = pidfile.find_by_marker(f"-Des.path.home={files.root}/")
        if other is None:
            return _reuse_foreign(settings, url)
        log.info("elasticsearch: our node of another version holds port %d; restarting", settings.es_port)
        process.terminate(other, timeout=STOP_TIMEOUT)
    if pid is not None:
        if not wait_until(
            lambda: is_healthy(url),
            timeout=START_TIMEOUT,
            still_starting=lambda: pidfile.is_alive(pid),
        ):
            raise DevstackError(
                f"elasticsearch: pid {pid} runs but {url} is not healthy; run "
                f"`python -m devstack stop-es` and retry.\n{_log_tails(files)}"
            )
        version = running_version(url)
        if version == settings.es_version:
            log.info("elasticsearch: already running (pid %d)", pid)
            return url
        log.info("elasticsearch: %s runs, %s is wanted; restarting", version, settings.es_version)
        process.terminate(pid, timeout=STOP_TIMEOUT)
        pidfile.remove(files.pid_file)
    return _start_local(settings, files)


def _reuse_foreign(settings: Settings, url: str) -> str:
    """Something we have no pid file for holds the port: reuse or refuse."""
    version = running_version(url) if is_healthy(url) else None
    if version is None:
        raise DevstackError(
            f"port {settings.es_port} is taken by something that is not a healthy "
            f"Elasticsearch; stop it or choose another port with {ENV_ES_PORT}"
        )
    if version != settings.es_version:
        raise DevstackError(
            f"{url} serves Elasticsearch {version}, not the {settings.es_version} "
            f"asked for ({ENV_ES_VERSION}), and this dev stack has no pid file for "
            f"it; stop it or choose another port with {ENV_ES_PORT}"
        )
    log.info("elasticsearch: reusing the healthy %s at %s", version, url)
    return url


def _start_local(settings: Settings, files: Layout) -> str:
    started = time.monotonic()
    runtime = java.find(
        java.required_for_elasticsearch(files.major),
        settings,
        purpose=f"Elasticsearch {settings.es_version}",
        modules=java.modules_for_elasticsearch(files.major),
    )
    archive = es_dist.download(settings.es_version)
    files.root.mkdir(parents=True, exist_ok=True)
    es_dist.unpack(archive, files.home)
    java_home = runtime.path
    if files.user is not None:
        ensure_system_user(files.user)
        java_home = readable_copy(runtime.path, files.root)
    _write_config(settings, files, vector_module=java.has_module(java_home, es_config.VECTOR_MODULE))
    if files.user is not None:
        chown_tree(files.root, files.user)
    log.info(
        "elasticsearch: starting %s on %s (Java %d at %s%s)",
        settings.es_version,
        settings.es_local_url,
        runtime.major,
        java_home,
        f", as user {files.user}" if files.user else "",
    )
    launched = time.monotonic()
    _launch(files, java_home)
    url = settings.es_local_url
    pid = pidfile.read_pid(files.pid_file)
    healthy = wait_until(
        lambda: is_healthy(url),
        timeout=max(1.0, START_TIMEOUT - (time.monotonic() - launched)),
        still_starting=lambda: pid is not None and pidfile.is_alive(pid),
    )
    if not healthy:
        if pid is not None:
            process.terminate(pid, timeout=STOP_TIMEOUT)
        pidfile.remove(files.pid_file)
        raise DevstackError(
            f"elasticsearch {settings.es_version} did not become healthy at {url} "
            f"within {START_TIMEOUT:.0f}s.\n{_log_tails(files)}"
        )
    log.info(
        "elasticsearch: %s healthy at %s in %.1fs (%.1fs after launch)",
        settings.es_version,
        url,
        time.monotonic() - started,
        time.monotonic() - launched,
    )
    return url


def _write_config(settings: Settings, files: Layout, *, vector_module: bool) -> None:
    for folder in (files.data, files.logs):
        folder.mkdir(parents=True, exist_ok=True)
    config = files.home / "config"
    (config / "elasticsearch.yml").write_text(
        es_config.render_elasticsearch_yml(
            http_port=settings.es_port,
            transport_port=settings.es_transport_port,
            data_dir=files.data,
            logs_dir=files.logs,
        )
    )
    jvm_options = config / "jvm.options"
    jvm_options.write_text(es_config.adjust_jvm_options(jvm_options.read_text(), vector_module=vector_module))
    options = config / "jvm.options.d"
    options.mkdir(exist_ok=True)
    (options / "devstack-heap.options").write_text(es_config.render_heap_options(settings.es_heap))


def _launch(files: Layout, java_home: Path) -> None:
    """Run ``bin/elasticsearch -d``: it returns once the node has started
    (or failed), leaving the server JVM daemonized with its pid in the file."""
    # `env -i`: the caller's ES_JAVA_OPTS, JAVA_HOME or ES_PATH_CONF must not
    # leak into the node; everything it needs is spelled out here.
    argv = [
        *run_as(files.user),
        "env",
        "-i",
        f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}",
        f"HOME={files.root}",
        "LANG=C.UTF-8",
        f"ES_JAVA_HOME={java_home}",
        f"ES_PATH_CONF={files.home / 'config'}",
        str(files.home / "bin" / "elasticsearch"),
        "-d",
        "-p",
        str(files.pid_file),
    ]
    with files.launcher_log.open("wb") as output:
        output.write(f"\n=== devstack: {' '.join(argv)}\n".encode())
        output.flush()
        try:
            result = subprocess.run(
                argv,
                cwd=files.home,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=START_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pid = pidfile.read_pid(files.pid_file)
            if pid is not None:
                process.terminate(pid, timeout=STOP_TIMEOUT)
            raise DevstackError(
                f"elasticsearch: the launcher did not return within {START_TIMEOUT:.0f}s.\n{_log_tails(files)}"
            ) from None
    if result.returncode != 0:
        raise DevstackError(f"elasticsearch: bin/elasticsearch exited with {result.returncode}.\n{_log_tails(files)}")


def _log_tails(files: Layout) -> str:
    return (
        f"Last lines of {files.launcher_log}:\n{process.log_tail(files.launcher_log, 15)}\n"
        f"Last lines of {files.server_log}:\n{process.log_tail(files.server_log, 30)}"
    )
