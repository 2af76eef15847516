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
import re
import subprocess
import time
from dataclasses import dataclass, replace
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
HOME_OPTION = "-Des.path.home="
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


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
        return f"{HOME_OPTION}{self.home}"

    @property
    def clone_marker(self) -> str:
        """On the command line of every node of this clone, whatever its version."""
        return f"{HOME_OPTION}{self.root}/"


@dataclass(frozen=True)
class Node:
    """A running node of this clone; ``files`` are those of its own version."""

    pid: int
    files: Layout

    @property
    def http_port(self) -> int | None:
        try:
            return es_config.http_port_in((self.files.home / "config" / "elasticsearch.yml").read_text())
        except OSError:
            return None

    def still_running(self) -> bool:
        line = pidfile.cmdline(self.pid) if pidfile.is_alive(self.pid) else None
        return line is not None and self.files.clone_marker in line


def running_pid(files: Layout) -> int | None:
    """Our node's pid: from the pid file, else found by its command line
    (the pid file may have been deleted while the node kept running)."""
    pid = pidfile.live_pid(files.pid_file, files.marker)
    if pid is None:
        pid = pidfile.find_by_marker(files.marker)
    return pid


def running_nodes(settings: Settings | None = None) -> list[Node]:
    """Every node of this clone, whatever version and port started it (`make up`'s ES 8 and
    `make test-es9`'s ES 9 on another port are two)."""
    return nodes_under(layout(settings or Settings.from_env()))


def nodes_under(files: Layout) -> list[Node]:
    """The running nodes whose home is under ``files.root``, lowest pid first.

    Each major version's pid file, then the command lines: a node whose pid
    file was deleted runs all the same.
    """
    marker = files.clone_marker
    pids = {pidfile.live_pid(path, marker) for path in files.root.glob("elasticsearch-es*.pid")}
    pids.update(pidfile.find_all_by_marker(marker))
    nodes = []
    for pid in sorted(pid for pid in pids if pid is not None):
        version = _version_of(pid, files.root)
        if version is not None:
            nodes.append(Node(pid, replace(files, version=version)))
    return nodes


def _version_of(pid: int, root: Path) -> str | None:
    """The version of the home ``pid`` runs from; every home is ``root/elasticsearch-<version>``."""
    for arg in pidfile.argv(pid) or []:
        if arg.startswith(HOME_OPTION):
            home = Path(arg.removeprefix(HOME_OPTION))
            version = home.name.removeprefix("elasticsearch-")
            return version if home.parent == root and _VERSION_RE.match(version) else None
    return None


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


def dedicated_layout(settings: Settings, name: str) -> Layout:
    """The files of a node of its own under ``<runtime>/<name>`` (``make bench-peers``'s): its home is
    outside this clone's usual folder, so `make down`, `status` and the tests never see or stop it."""
    files = layout(settings)
    return replace(files, root=files.root.parent / name)


def ensure_dedicated(settings: Settings, files: Layout) -> Node:
    """Start the node of ``files`` on ``settings.es_port`` unless it runs; never reuse another's node."""
    with locks.held(NAME):
        if running_pid(files) is None and port_open(LOCALHOST, settings.es_port):
            raise DevstackError(
                f"port {settings.es_port} is taken by a process that is not this node ({files.root}); choose another"
            )
        _ensure_local(settings, files)
        pid = running_pid(files)
    if pid is None:
        raise DevstackError(f"elasticsearch under {files.root} started but its pid file is missing")
    return Node(pid, files)


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
        _terminate(pid, files)
        return True


def stop_all(settings: Settings | None = None) -> list[Node]:
    """Stop every node of this clone, whatever its version or port; return those stopped.

    For `down`: the ES 9 node `make test-es9` started must not outlive it
    because the current settings name ES 8. Also with TRACESEARCH_ES_URL set,
    since a node under our own folder is ours whatever the settings say.
    """
    settings = settings or Settings.from_env()
    with locks.held(NAME):
        nodes = running_nodes(settings)
        for node in nodes:
            _terminate(node.pid, node.files)
    if settings.es_external_url is None and port_open(LOCALHOST, settings.es_port):
        log.warning(
            "elasticsearch: something the dev stack did not start listens on %s; left alone",
            settings.es_local_url,
        )
    return nodes


def stop_node(node: Node) -> None:
    """Stop ``node`` unless it has ended meanwhile (its pid may be someone else's by now)."""
    with locks.held(NAME):
        if node.still_running():
            _terminate(node.pid, node.files)


def _terminate(pid: int, files: Layout) -> None:
    log.info("elasticsearch %s: stopping pid %d", files.version, pid)
    process.terminate(pid, timeout=STOP_TIMEOUT)
    pidfile.remove(files.pid_file)


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


def other_statuses(settings: Settings | None = None) -> list[ComponentStatus]:
    """The nodes of this clone of another version than the settings name, e.g. `make test-es9`'s."""
    settings = settings or Settings.from_env()
    return [_node_status(n) for n in running_nodes(settings) if n.files.version != settings.es_version]


def _node_status(node: Node) -> ComponentStatus:
    detail = f"version {node.files.version}, pid {node.pid}, outside the current settings; `down` stops it"
    port = node.http_port
    if port is None:
        return ComponentStatus(NAME, State.UNHEALTHY, detail=f"{detail}; port unknown", extra=True)
    url = f"http://{LOCALHOST}:{port}"
    state = State.HEALTHY if is_healthy(url) else State.UNHEALTHY
    return ComponentStatus(NAME, state, url, detail=detail, extra=True)


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
        other = pidfile.find_by_marker(files.clone_marker)
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
            allow_mmap=settings.es_mmap,
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
                # `-d` leaves the node in our process group, where Ctrl-C in the terminal that
                # started it reaches it: `make test`'s outage tests restart the developer's node,
                # which a Ctrl-C would then stop. Kafka and the service have sessions of their own.
                start_new_session=True,
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
