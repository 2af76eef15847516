"""The alert rules a process evaluates and serves: ``TRACESEARCH_ALERTS_RULES_FILE``, reloaded on change.

Every process (each gunicorn worker) holds its own copy and looks at the file's inode, size and
modification time at most once per reload interval: on use, and from a small watcher thread so that an
idle worker's ``/metrics`` state is current too. A file that became invalid keeps the last good rules;
why is logged once per problem and ``on_state(valid, loaded)`` is told (the
``tracesearch_alert_rules_file_valid`` and ``_loaded`` gauges). A bad file at start stops the service
(``file_problem``, from gunicorn.conf.py); a worker that starts later while the file is bad has no good
rules to keep: it evaluates none and its API answers 503 until the file is fixed.

``PUT /api/v1/alerts/rules`` writes the file atomically (a new file renamed over the old, as YAML: the
comments of a hand-written file are not kept), and every process picks it up at its next check.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tracesearch.alerting.rules import Rule, RuleFile, RulesError, from_document, parse
from tracesearch.files import write_atomically

log = logging.getLogger(__name__)
VARIABLE = "TRACESEARCH_ALERTS_RULES_FILE"
HEADER = b"# Alert rules (tracesearch): written by PUT /api/v1/alerts/rules; see the README's Alerting section.\n"

# valid, rules loaded: told after every check.
StateListener = Callable[[bool, int], None]


class NoRulesFile(Exception):
    """The API was asked for the file, but none is configured."""


class RulesUnavailable(Exception):
    """This process has no valid rules to serve (it started while the file was bad)."""


@dataclass(frozen=True)
class _Stat:
    inode: int
    size: int
    mtime_ns: int


def file_problem(path: str) -> str | None:
    """Why the rules file cannot be used (missing, unreadable, invalid), or None: checked once at start,
    before gunicorn forks, so that a bad file stops the service in one line naming the field."""
    if not path:
        return None
    try:
        parse(Path(path).read_bytes())
    except OSError as exc:
        return f"{VARIABLE}={path}: cannot read it ({exc.strerror or exc})"
    except RulesError as exc:
        return f"{VARIABLE}={path}: {exc}"
    return None


def _ignore(valid: bool, loaded: int) -> None:
    return None


class RuleSet:
    def __init__(
        self,
        path: str,
        *,
        reload_interval_s: float,
        on_state: StateListener = _ignore,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self._interval = reload_interval_s
        self._on_state = on_state
        self._clock = clock
        self._lock = threading.Lock()
        self._next_check = clock() + reload_interval_s
        self._loaded: RuleFile | None = None if path else RuleFile()
        self._stat: _Stat | None = None
        self._bad_stat: _Stat | None = None
        self._complaint = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if path:
            self._load_at_start()
        else:
            on_state(True, 0)

    @property
    def configured(self) -> bool:
        return bool(self.path)

    @property
    def valid(self) -> bool:
        """Whether the file as it is now is what is served (False: a bad file, the last good rules kept)."""
        return not self._complaint

    @property
    def problem(self) -> str:
        """Why the file is not served as it is now ("" when it is)."""
        return self._complaint

    # -- reading

    def rules(self) -> tuple[Rule, ...]:
        """The rules to evaluate now (after a check when the interval passed); none before a good file."""
        self._maybe_reload()
        loaded = self._loaded
        return loaded.rules if loaded is not None else ()

    def document(self) -> Mapping[str, Any]:
        """The file's document as this process serves it (after a check for a newer one)."""
        if not self.path:
            raise NoRulesFile()
        self._maybe_reload(force=True)
        loaded = self._loaded
        if loaded is None:
            raise RulesUnavailable(self._complaint or "the rules file has not been loaded")
        return loaded.document

    # -- the API

    def replace(self, document: Any) -> RuleFile:
        """Validate ``document`` (``RulesError`` names the wrong field), write it atomically to the file
        and serve it in this process at once; the other processes see it at their next check."""
        if not self.path:
            raise NoRulesFile()
        rule_file = from_document(document)
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
        write_atomically(Path(self.path), HEADER + text.encode())
        with self._lock:
            self._accept(rule_file, _stat(self.path))
        log.info("alert rules replaced through the API (%s): %d rules", self.path, len(rule_file.rules))
        return rule_file

    # -- the watcher

    def start(self) -> None:
        """Check the file every reload interval from a daemon thread (idempotent; no file: nothing)."""
        if not self.path or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._watch, name="alert-rules-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._maybe_reload(force=True)
            except Exception:  # the watcher must outlive a surprise; the next check tries again
                log.exception("alert rules: checking %s failed", self.path)

    # -- loading

    def _load_at_start(self) -> None:
        try:
            stat = _stat(self.path)
            self._accept(parse(Path(self.path).read_bytes()), stat)
        except (OSError, RulesError) as exc:
            # The master refuses a bad file before forking (file_problem); a worker starting later while
            # the file is bad has nothing good to keep.
            self._complain(None, f"{self.path}: {_reason(exc)}; no rules until the file is fixed")

    def _maybe_reload(self, force: bool = False) -> None:
        if not self.path or (not force and self._clock() < self._next_check):
            return
        # One thread checks; the others use what is loaded meanwhile.
        if not self._lock.acquire(blocking=force):
            return
        try:
            self._next_check = self._clock() + self._interval
            self._check_file()
        finally:
            self._lock.release()

    def _check_file(self) -> None:
        try:
            stat = _stat(self.path)
        except OSError as exc:
            self._complain(None, f"cannot read {self.path} ({exc.strerror or exc}); {self._kept()}")
            return
        if stat == self._stat or stat == self._bad_stat:
            return
        try:
            rule_file = parse(Path(self.path).read_bytes())
        except (OSError, RulesError) as exc:
            self._complain(stat, f"{self.path} is not valid: {_reason(exc)}; {self._kept()}")
            return
        self._accept(rule_file, stat)
        log.info("alert rules loaded from %s: %d rules", self.path, len(rule_file.rules))

    def _kept(self) -> str:
        loaded = self._loaded
        if loaded is None:
            return "no rules until it is fixed"
        return f"keeping the {len(loaded.rules)} rules loaded before"

    def _accept(self, rule_file: RuleFile, stat: _Stat) -> None:
        self._loaded = rule_file
        self._stat = stat
        self._bad_stat = None
        self._complaint = ""
        self._on_state(True, len(rule_file.rules))

    def _complain(self, stat: _Stat | None, problem: str) -> None:
        # Said once per problem, not at every check.
        if problem != self._complaint:
            log.error("alert rules: %s", problem)
        self._complaint = problem
        self._bad_stat = stat
        loaded = self._loaded
        self._on_state(False, len(loaded.rules) if loaded is not None else 0)


def _reason(exc: OSError | RulesError) -> str:
    return f"cannot read it ({exc.strerror or exc})" if isinstance(exc, OSError) else str(exc)


def _stat(path: str) -> _Stat:
    st = os.stat(path)
    # The inode too: a rename within the same clock tick, with the same size, is still a new file.
    return _Stat(st.st_ino, st.st_size, st.st_mtime_ns)
