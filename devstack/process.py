"""Background processes described by data: start, wait for health, stop.

A new kind of process (a second worker, a mock upstream, ...) is one more
``ProcessSpec``; the start/stop/status logic below does not change.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack import pidfile
from devstack.errors import DevstackError
from devstack.health import wait_until

log = logging.getLogger(__name__)

HealthCheck = Callable[[], bool]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class ProcessSpec:
    """Everything needed to run one long-lived process in the background."""

    name: str
    argv: Sequence[str]
    cwd: Path
    log_path: Path
    pid_path: Path
    # A substring of the process's command line, checked before trusting a
    # pid file (see devstack.pidfile).
    marker: str
    env: Mapping[str, str] = field(default_factory=dict)
    # None: the process has no readiness probe; it is "ready" once it has
    # stayed alive for ``settle_seconds``.
    health: HealthCheck | None = None
    start_timeout: float = 60.0
    settle_seconds: float = 2.0
    stop_timeout: float = 30.0
    # Shown by `status`, e.g. the base URL.
    endpoint: str = ""
    # Files that must exist before starting (checked for a clear message
    # instead of a crash log), e.g. the app module.
    requires: Sequence[Path] = ()
    # True when no other program's command line can contain ``marker``: then
    # a process whose pid file was deleted is still found (and stopped).
    marker_is_unique: bool = False


def running_pid(spec: ProcessSpec) -> int | None:
    pid = pidfile.live_pid(spec.pid_path, spec.marker)
    if pid is None and spec.marker_is_unique:
        pid = pidfile.find_by_marker(spec.marker)
    return pid


def is_healthy(spec: ProcessSpec) -> bool:
    if running_pid(spec) is None:
        return False
    return spec.health() if spec.health is not None else True


def start(spec: ProcessSpec) -> int | None:
    """Start ``spec`` unless it already runs; return its pid once ready.

    None when a healthy instance we did not start already serves (a second
    one could not bind its port anyway). Raises DevstackError with the tail
    of the log if the process dies or does not become healthy within
    ``start_timeout``.
    """
    running = running_pid(spec)
    if running is not None:
        return _adopt(spec, running)
    if spec.health is not None and spec.health():
        log.info("%s: a healthy instance the dev stack did not start serves %s; reusing it", spec.name, spec.endpoint)
        return None
    missing = [str(path) for path in spec.requires if not path.exists()]
    if missing:
        raise DevstackError(f"{spec.name}: cannot start, missing {', '.join(missing)}")
    started = time.monotonic()
    pid = spawn(spec)

    def alive() -> bool:
        return pidfile.is_alive(pid)

    if spec.health is None:
        time.sleep(spec.settle_seconds)
        ready = alive()
    else:
        ready = wait_until(spec.health, timeout=spec.start_timeout, still_starting=alive)
    if not ready:
        reason = "exited" if not alive() else f"not healthy after {spec.start_timeout:.0f}s"
        terminate(pid, timeout=spec.stop_timeout)
        pidfile.remove(spec.pid_path)
        raise DevstackError(
            f"{spec.name}: {reason} during start-up. Command: {' '.join(spec.argv)}\n"
            f"Last lines of {spec.log_path}:\n{log_tail(spec.log_path)}"
        )
    log.info("%s: ready in %.1fs (pid %d)", spec.name, time.monotonic() - started, pid)
    return pid


def _adopt(spec: ProcessSpec, pid: int) -> int:
    """An instance started earlier (maybe still starting): wait for it."""
    if spec.health is None or wait_until(
        spec.health,
        timeout=spec.start_timeout,
        still_starting=lambda: pidfile.is_alive(pid),
    ):
        log.info("%s: already running (pid %d)", spec.name, pid)
        return pid
    raise DevstackError(
        f"{spec.name}: pid {pid} runs but is not healthy after {spec.start_timeout:.0f}s; "
        f"stop it and retry. Last lines of {spec.log_path}:\n{log_tail(spec.log_path)}"
    )


def dies_with_parent() -> None:
    """A ``preexec_fn``: Linux sends the child SIGTERM when the thread that started it ends.

    Tests and benchmarks start services they stop themselves; a run killed with SIGKILL (or by
    a CI timeout) would otherwise leave gunicorns and ingesters running, holding ports and
    writing into the next run's Elasticsearch. Start such children from the main thread.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(spec: ProcessSpec) -> int:
    """Launch detached from our terminal and session, output to the log file."""
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    with spec.log_path.open("ab") as log_file:
        log_file.write(f"\n=== devstack: starting {spec.name} ===\n".encode())
        log_file.flush()
        try:
            child = subprocess.Popen(
                list(spec.argv),
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C in the shell that ran `up` must not
                # reach the stack, and stop() can signal the whole group.
                start_new_session=True,
            )
        except OSError as error:
            raise DevstackError(f"{spec.name}: cannot run {spec.argv[0]}: {error}") from error
    pidfile.write_pid(spec.pid_path, child.pid)
    return child.pid


def stop(spec: ProcessSpec) -> bool:
    """Stop ``spec`` if it runs; return whether there was something to stop."""
    pid = running_pid(spec)
    if pid is None:
        return False
    log.info("%s: stopping pid %d", spec.name, pid)
    terminate(pid, timeout=spec.stop_timeout)
    pidfile.remove(spec.pid_path)
    return True


def terminate(pid: int, *, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL.

    The SIGKILL goes to the process group when ``pid`` leads one (processes
    from ``spawn`` do), so forked workers do not outlive their parent.
    """
    if not _signal(pid, signal.SIGTERM):
        return
    if wait_until(lambda: not pidfile.is_alive(pid), timeout=timeout, interval=0.2):
        return
    log.warning("pid %d ignored SIGTERM for %.0fs; sending SIGKILL", pid, timeout)
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    if group == pid:
        _signal_group(group, signal.SIGKILL)
    else:
        _signal(pid, signal.SIGKILL)
    wait_until(lambda: not pidfile.is_alive(pid), timeout=10, interval=0.2)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)
