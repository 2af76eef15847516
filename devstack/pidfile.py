"""Pid files that cannot lie: a pid counts only while its process is alive
and its command line still carries a marker we chose at start.

The marker check matters because pids are reused: after a reboot or a crash
the pid in a stale file may belong to an unrelated process, which ``stop``
must never signal.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def read_pid(path: Path) -> int | None:
    """The pid in ``path``, or None if the file is missing, empty or garbage."""
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    return pid if pid > 0 else None


def write_pid(path: Path, pid: int) -> None:
    """Write atomically, so a concurrent reader never sees a half-written pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def cmdline(pid: int) -> str | None:
    """The command line of ``pid`` with NULs as spaces, None if it is gone."""
    raw = _raw_cmdline(pid)
    return None if raw is None else raw.replace(b"\0", b" ").decode(errors="replace").strip()


def argv(pid: int) -> list[str] | None:
    """The arguments of ``pid`` one by one (a path with spaces stays whole), None if it is gone."""
    raw = _raw_cmdline(pid)
    return None if raw is None else raw.decode(errors="replace").split("\0")[:-1]


def _raw_cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs; zombies count as dead.

    A process we started and stopped stays a zombie until we reap it; a
    plain ``kill(pid, 0)`` would report it alive and ``stop`` would wait for
    nothing until its timeout.
    """
    _reap_if_child(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user (Elasticsearch's system user)
    state = _proc_state(pid)
    if state in {None, "X"}:
        return False
    # A JVM's main thread may exit while the others keep running: the
    # process then shows "Z" but is alive. Only a zombie with no threads
    # left is dead.
    return state != "Z" or _thread_count(pid) > 1


def live_pid(path: Path, marker: str) -> int | None:
    """The pid in ``path`` if that process runs and its command line contains
    ``marker``; otherwise None, and a stale file is removed."""
    pid = read_pid(path)
    if pid is None:
        if path.exists():
            remove(path)
        return None
    line = cmdline(pid) if is_alive(pid) else None
    if line is not None and marker in line:
        return pid
    remove(path)
    return None


def find_by_marker(marker: str) -> int | None:
    """A live process whose command line contains ``marker``, if any.

    The fallback when a pid file was deleted while its server kept running.
    Only for markers no other program's command line can contain (a JVM
    system property naming our own folder): anything found is signalled.
    """
    found = find_all_by_marker(marker)
    return found[0] if found else None


def find_all_by_marker(marker: str) -> list[int]:
    """Every live process whose command line contains ``marker``, lowest pid first
    (same caveat as ``find_by_marker``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        line = cmdline(pid)
        if line is not None and marker in line and is_alive(pid):
            found.append(pid)
    return sorted(found)


def _reap_if_child(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _thread_count(pid: int) -> int:
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0


def _proc_state(pid: int) -> str | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses; the state
    # is the first field after the last ')'.
    rest = stat_line.rsplit(")", 1)[-1].split()
    return rest[0] if rest else None
