"""``python -m devstack run -- COMMAND``: run a command, then stop what of the dev stack it started.

Tests start Elasticsearch and Kafka on demand and leave them up for the next
test; so `make test` runs its suites through this. Whatever ran before the
command began (a developer's `make up` stack) is left alone, and the last line
says what was stopped and what still runs.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from devstack import stack
from devstack.errors import DevstackError
from devstack.settings import Settings

log = logging.getLogger(__name__)

# A shell reports a child killed by signal N as 128 + N; make and CI expect that.
SIGNAL_EXIT_BASE = 128
EXIT_LEFT_RUNNING = 1


def run(argv: Sequence[str], settings: Settings) -> int:
    """Run ``argv``, then stop what of this clone's dev stack runs but did not before.

    Returns the command's exit status; 1 if it succeeded but something it
    started could not be stopped.
    """
    before = {entry.name for entry in stack.running(settings)}
    code = _run_command(argv)
    started = [entry for entry in stack.running(settings) if entry.name not in before]
    for entry in reversed(started):  # the service before Kafka before Elasticsearch
        try:
            entry.stop()
        except DevstackError as error:
            log.error("could not stop %s: %s", entry, error)
    after = stack.running(settings)
    print(report(before, started, after), flush=True)
    if code == 0 and any(entry.name not in before for entry in after):
        return EXIT_LEFT_RUNNING
    return code


def report(before: set[str], started: Sequence[stack.Running], after: Sequence[stack.Running]) -> str:
    """One line: what was stopped, what still runs and why."""
    still = {entry.pid for entry in after}
    stopped = [entry for entry in started if entry.pid not in still]
    stuck = [entry for entry in after if entry.name not in before]
    kept = [entry for entry in after if entry.name in before]
    gone = sorted(before - {entry.name for entry in after})
    parts = [f"stopped what this run started: {_list(stopped)}" if stopped else "this run left nothing new running"]
    if stuck:
        parts.append(f"could not stop {_list(stuck)} (see above; `make down` stops {_them(stuck)})")
    if kept:
        parts.append(f"left running as before this run: {_list(kept)} (`make down` stops {_them(kept)})")
    if gone:
        parts.append(f"no longer running although it ran before: {', '.join(gone)}")
    if not after:
        parts.append("nothing of this clone's dev stack runs now")
    return "devstack: " + "; ".join(parts)


def _list(entries: Sequence[stack.Running]) -> str:
    return ", ".join(str(entry) for entry in entries)


def _them(entries: Sequence[stack.Running]) -> str:
    return "it" if len(entries) == 1 else "them"


def _run_command(argv: Sequence[str]) -> int:
    if not argv:
        raise DevstackError("run: no command given (python -m devstack run -- COMMAND ...)")
    try:
        child = subprocess.Popen(list(argv))
    except OSError as error:
        raise DevstackError(f"run: cannot run {argv[0]}: {error}") from error
    # Ctrl-C reaches the command too (same process group): wait for it to end, then clean up.
    with _ignoring(signal.SIGINT):
        code = child.wait()
    return SIGNAL_EXIT_BASE - code if code < 0 else code


@contextmanager
def _ignoring(sig: signal.Signals) -> Iterator[None]:
    previous = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(sig, previous)
