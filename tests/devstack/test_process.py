"""The generic process machinery, with small local Python processes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack import pidfile, process
from devstack.errors import DevstackError
from devstack.health import http_ok


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_server_spec(tmp_path: Path) -> process.ProcessSpec:
    port = free_port()
    (tmp_path / "health").write_text("ok")
    return process.ProcessSpec(
        name="web",
        argv=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=tmp_path,
        log_path=tmp_path / "web.log",
        pid_path=tmp_path / "web.pid",
        marker=f"http.server --bind 127.0.0.1 {port}",
        health=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
        start_timeout=20,
        stop_timeout=5,
    )


def test_start_is_idempotent_and_stop_cleans_up(tmp_path: Path) -> None:
    spec = http_server_spec(tmp_path)
    pid = process.start(spec)
    assert pid is not None
    try:
        assert process.is_healthy(spec)
        assert process.start(spec) == pid  # reused, not started twice
        assert pidfile.read_pid(spec.pid_path) == pid
    finally:
        assert process.stop(spec)
    assert not pidfile.is_alive(pid)
    assert not spec.pid_path.exists()
    assert not process.stop(spec)  # idempotent


def test_stale_pid_file_does_not_block_a_start(tmp_path: Path) -> None:
    spec = http_server_spec(tmp_path)
    spec.pid_path.write_text("1\n")  # pid 1 runs, but is not our server
    pid = process.start(spec)
    try:
        assert pid != 1
    finally:
        process.stop(spec)


def test_a_process_that_dies_reports_its_log(tmp_path: Path) -> None:
    spec = process.ProcessSpec(
        name="broken",
        argv=[sys.executable, "-c", "import sys; print('bad config: TRACESEARCH_X'); sys.exit(3)"],
        cwd=tmp_path,
        log_path=tmp_path / "broken.log",
        pid_path=tmp_path / "broken.pid",
        marker="bad config",
        health=lambda: False,
        start_timeout=20,
    )
    with pytest.raises(DevstackError, match=r"(?s)broken: exited during start-up.*bad config: TRACESEARCH_X"):
        process.start(spec)
    assert not spec.pid_path.exists()


def test_without_health_check_alive_after_settling_is_ready(tmp_path: Path) -> None:
    spec = process.ProcessSpec(
        name="worker",
        argv=[sys.executable, "-c", "import time; time.sleep(60)  # devstack-worker"],
        cwd=tmp_path,
        log_path=tmp_path / "worker.log",
        pid_path=tmp_path / "worker.pid",
        marker="devstack-worker",
        settle_seconds=0.3,
        stop_timeout=5,
    )
    pid = process.start(spec)
    assert process.running_pid(spec) == pid
    assert process.stop(spec)


def test_missing_requirements_are_named(tmp_path: Path) -> None:
    spec = process.ProcessSpec(
        name="service",
        argv=["gunicorn", "app:app"],
        cwd=tmp_path,
        log_path=tmp_path / "s.log",
        pid_path=tmp_path / "s.pid",
        marker="app:app",
        requires=(tmp_path / "app.py",),
    )
    with pytest.raises(DevstackError, match=r"service: cannot start, missing .*app\.py"):
        process.start(spec)


def test_sigterm_ignored_leads_to_sigkill(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)  # stubborn"
    spec = process.ProcessSpec(
        name="stubborn",
        argv=[sys.executable, "-c", code],
        cwd=tmp_path,
        log_path=tmp_path / "st.log",
        pid_path=tmp_path / "st.pid",
        marker="stubborn",
        settle_seconds=0.3,
        stop_timeout=0.5,
    )
    pid = process.start(spec)
    assert pid is not None
    assert process.stop(spec)
    assert not pidfile.is_alive(pid)


def test_a_healthy_foreign_instance_is_reused(tmp_path: Path) -> None:
    first = http_server_spec(tmp_path)
    assert process.start(first) is not None
    try:
        # Same port and health check, but no pid file of its own: it must not start a second server.
        second = process.ProcessSpec(
            name="web2",
            argv=["false"],
            cwd=tmp_path,
            log_path=tmp_path / "web2.log",
            pid_path=tmp_path / "web2.pid",
            marker="never",
            health=first.health,
        )
        assert process.start(second) is None
        assert not second.pid_path.exists()
    finally:
        process.stop(first)


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "l.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.log_tail(log, 2) == "line 98\nline 99"
    assert "no log" in process.log_tail(tmp_path / "missing.log")


# A parent that starts a sleeper the way the tests start their services, says its pid, then waits.
PARENT = """
import subprocess, sys, time
from devstack.process import dies_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=dies_with_parent)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_child_started_with_dies_with_parent_ends_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2], text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert pidfile.is_alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while pidfile.is_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = pidfile.is_alive(child_pid)
    if alive:
        os.kill(child_pid, signal.SIGKILL)
    assert not alive, "the child outlived the parent that was SIGKILLed"
