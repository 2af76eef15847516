"""Start and stop the demo services as child processes (POSIX only).

The parent binds every listening socket on a free loopback port *before* starting
any child and hands each child its socket: all URLs are known up front, services
start in parallel, and there is no window in which another program could take a
port between "found free" and "bound".
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import requests

from demo.config import HEALTH_PATH, REPORT_PREFIX, SERVICES, ServiceSpec

# So `python -m demo.servicehost` resolves even when the caller's cwd is elsewhere.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class ServiceStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServiceReport:
    """What one service said it exported, read from its stdout after it exited."""

    service: str
    returncode: int | None
    endpoint: str = ""
    exported: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failed_count(self) -> int:
        return sum(len(ids) for ids in self.failed.values())


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def _parse_report(name: str, returncode: int | None, stdout: str) -> ServiceReport:
    for line in reversed(stdout.splitlines()):
        if line.startswith(REPORT_PREFIX):
            data = json.loads(line[len(REPORT_PREFIX) :])
            return ServiceReport(
                service=name,
                returncode=returncode,
                endpoint=data["endpoint"],
                exported=data["exported"],
                failed=data["failed"],
            )
    return ServiceReport(service=name, returncode=returncode)


class ServiceCluster:
    """Context manager: the services run inside the ``with`` block and no longer."""

    def __init__(self, base_url: str, specs: Sequence[ServiceSpec] = SERVICES) -> None:
        self._base_url = base_url
        self._specs = tuple(specs)
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self.urls: dict[str, str] = {}
        self.reports: dict[str, ServiceReport] = {}

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

    def start(self, ready_timeout: float = 20.0) -> None:
        sockets = {spec.name: _listen() for spec in self._specs}
        self.urls = {name: f"http://127.0.0.1:{s.getsockname()[1]}" for name, s in sockets.items()}
        # The user's OTEL_* settings (a sampler, another endpoint, SDK disabled) would
        # silently change what the services export; the demo configures them in code.
        env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        try:
            for spec in self._specs:
                fd = sockets[spec.name].fileno()
                cmd = [
                    sys.executable, "-m", "demo.servicehost",
                    "--service", spec.name,
                    "--fd", str(fd),
                    "--base-url", self._base_url,
                    "--parent-pid", str(os.getpid()),
                    *(f"--peer={peer}={self.urls[peer]}" for peer in spec.calls),
                ]  # fmt: skip
                self._procs[spec.name] = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                    pass_fds=(fd,), env=env,
                )  # fmt: skip
        finally:
            # The children hold their own copies; ours would keep the ports alive
            # (and accepting into a dead backlog) after the children are gone.
            for sock in sockets.values():
                sock.close()
        self._wait_ready(time.monotonic() + ready_timeout)

    def _wait_ready(self, deadline: float) -> None:
        pending = dict(self.urls)
        while pending:
            for name, url in list(pending.items()):
                if self._procs[name].poll() is not None:
                    raise ServiceStartError(f"{name} exited during startup (see its stderr above)")
                try:
                    if requests.get(url + HEALTH_PATH, timeout=0.5).ok:
                        del pending[name]
                except requests.RequestException:
                    pass
            if pending and time.monotonic() > deadline:
                raise ServiceStartError(f"not ready in time: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.05)

    def stop(self, timeout: float = 20.0) -> dict[str, ServiceReport]:
        """SIGTERM every service (each flushes its spans), then collect their reports."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self._procs.items():
            try:
                stdout, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
            self.reports[name] = _parse_report(name, proc.returncode, stdout or "")
        self._procs.clear()
        return self.reports
