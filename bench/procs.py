"""CPU time of processes, read from /proc (utime + stime, every thread included)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process; 0 when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state is index 0, utime index 11, stime index 12 (fields 14 and 15 of stat(5)).
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return sorted(found)


def total_cpu(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def own_cpu() -> float:
    """This process: the load generator."""
    times = os.times()
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU time every core spent on anything but idling, since boot (first line of /proc/stat).

    Beside the processes we account for, it shows how much CPU something else took during a phase,
    which would make the phase's figures unreliable.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_S
