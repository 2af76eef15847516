"""Inter-process locks, so parallel pytest workers or two shells running
``up`` do not start the same server twice."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from devstack.paths import locks_dir


@contextmanager
def held(name: str) -> Iterator[None]:
    """Hold the lock ``name`` (blocking) for the duration of the block.

    flock is released by the kernel when the process dies, so a crashed
    holder never leaves the lock stuck.
    """
    directory = locks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
