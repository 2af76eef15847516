import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import pidfile

SLEEPER = "import time; time.sleep(60)  # devstack-pidfile-test"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", SLEEPER])
    yield child
    child.kill()
    child.wait()


def test_read_missing_empty_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    assert pidfile.read_pid(path) is None
    path.write_text("")
    assert pidfile.read_pid(path) is None
    path.write_text("12ab\n")
    assert pidfile.read_pid(path) is None
    path.write_text("0")
    assert pidfile.read_pid(path) is None
    pidfile.write_pid(path, 4242)
    assert pidfile.read_pid(path) == 4242
    assert path.read_text() == "4242\n"


def test_live_pid_needs_the_marker(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    path = tmp_path / "s.pid"
    pidfile.write_pid(path, sleeper.pid)
    assert pidfile.live_pid(path, "devstack-pidfile-test") == sleeper.pid
    # A live process without our marker is a reused pid: the file is stale.
    assert pidfile.live_pid(path, "kafka.Kafka") is None
    assert not path.exists()


def test_dead_process_makes_the_file_stale(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    path = tmp_path / "dead.pid"
    pidfile.write_pid(path, child.pid)
    assert pidfile.live_pid(path, "python") is None
    assert not path.exists()


def test_garbage_file_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "g.pid"
    path.write_text("not a pid")
    assert pidfile.live_pid(path, "x") is None
    assert not path.exists()


def test_unreaped_child_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not waited for: a zombie until reaped, which `kill(pid, 0)` alone reports as alive.
    for _ in range(100):
        if not pidfile.is_alive(child.pid):
            break
        subprocess.run(["sleep", "0.05"], check=True)
    assert not pidfile.is_alive(child.pid)
    child.wait()


def test_find_by_marker(sleeper: subprocess.Popen[bytes]) -> None:
    # Right after Popen the child may not have exec'd yet, so its command line is still ours.
    found = None
    for _ in range(100):
        found = pidfile.find_by_marker("devstack-pidfile-test")
        if found is not None:
            break
        time.sleep(0.02)
    assert found == sleeper.pid
    assert pidfile.find_by_marker("no-such-marker-" + "x" * 20) is None


def test_argv_and_every_process_with_a_marker(sleeper: subprocess.Popen[bytes]) -> None:
    second = subprocess.Popen([sys.executable, "-c", SLEEPER, "an argument with spaces"])
    try:
        for _ in range(100):
            if pidfile.argv(second.pid) == [sys.executable, "-c", SLEEPER, "an argument with spaces"]:
                break
            time.sleep(0.02)
        assert pidfile.argv(second.pid) == [sys.executable, "-c", SLEEPER, "an argument with spaces"]
        assert pidfile.find_all_by_marker("devstack-pidfile-test") == sorted([sleeper.pid, second.pid])
    finally:
        second.kill()
        second.wait()
    assert pidfile.argv(second.pid) is None
