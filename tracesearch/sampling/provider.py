"""The strategy a remote sampler is served: the static file, reloaded when it changes, and the adaptive
overlay.

Precedence, per service: a service listed in the file gets the file's strategy; otherwise, when adaptive
sampling is on and has probabilities for it, a per-operation strategy from them; otherwise the file's
``default_strategy``; with no file at all, probabilistic ``TRACESEARCH_SAMPLING_DEFAULT_PROBABILITY``
(1.0: keep everything, tracesearch's behaviour before sampling).

Every process (each gunicorn worker) holds its own copy and looks at the file's inode, size and
modification time at most once per reload interval, on a request (no thread: an idle worker has nothing
to serve). The admin API writes the file atomically (a new file renamed over the old), so a reader
sees the old document or the new one, never half of one, and every process picks it up on its next check.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tracesearch.files import write_atomically
from tracesearch.sampling.strategies import (
    PROBABILISTIC,
    OperationSampling,
    OperationStrategy,
    StaticStrategies,
    Strategies,
    StrategiesError,
    StrategyResponse,
    build,
    from_document,
    parse,
)

log = logging.getLogger(__name__)


class AdaptiveSource(Protocol):
    def probabilities(self, service: str) -> Mapping[str, float] | None:
        """Per-operation probabilities computed for the service (None: nothing computed for it)."""

    def default_probability(self) -> float: ...


class NoStrategiesFile(Exception):
    """The admin API was asked for the file, but none is configured."""


class StrategiesUnavailable(Exception):
    """This process has no valid file to serve from (it started while the file was bad)."""


@dataclass(frozen=True)
class _Stat:
    inode: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Loaded:
    strategies: Strategies | None
    static: StaticStrategies
    stat: _Stat | None


def file_problem(path: str) -> str | None:
    """Why the strategies file cannot be served (missing, unreadable, invalid), or None: checked once at
    start, before gunicorn forks, so a bad file stops the service in one line."""
    if not path:
        return None
    try:
        parse(Path(path).read_bytes())
    except OSError as exc:
        return f"TRACESEARCH_SAMPLING_STRATEGIES_FILE={path}: cannot read it ({exc.strerror or exc})"
    except StrategiesError as exc:
        return f"TRACESEARCH_SAMPLING_STRATEGIES_FILE={path}: {exc}"
    return None


class StrategyProvider:
    def __init__(
        self,
        path: str,
        *,
        reload_interval_s: float,
        default_probability: float,
        adaptive: AdaptiveSource | None = None,
        adaptive_lower_bound_tps: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self._interval = reload_interval_s
        self._default_probability = default_probability
        self._adaptive = adaptive
        self._lower_bound = adaptive_lower_bound_tps
        self._clock = clock
        self._reload_lock = threading.Lock()
        self._next_check = clock() + reload_interval_s
        self._problem: str | None = None
        self._bad_stat: _Stat | None = None
        self._complaint = ""
        self._loaded = _Loaded(None, build(None, default_probability), None)
        if path:
            self._load_at_start()

    @property
    def configured(self) -> bool:
        return bool(self.path)

    # -- serving

    def strategy(self, service: str) -> StrategyResponse:
        """The strategy ``service`` is served now (see the module's precedence)."""
        self._maybe_reload()
        if self._loaded.strategies is None and self.path:
            raise StrategiesUnavailable(self._problem or "the strategies file has not been loaded")
        static = self._loaded.static
        listed = static.get(service)
        if listed is not None:
            return listed
        if self._adaptive is not None:
            probabilities = self._adaptive.probabilities(service)
            if probabilities is not None:
                return self._adaptive_response(probabilities)
        return static.default

    def _adaptive_response(self, probabilities: Mapping[str, float]) -> StrategyResponse:
        # As Jaeger's adaptive provider answers: per-operation only, no service-wide probabilistic field.
        source = self._adaptive
        assert source is not None
        operations = tuple(OperationStrategy(op, p) for op, p in sorted(probabilities.items()))
        sampling = OperationSampling(source.default_probability(), operations, lower_bound_tps=self._lower_bound)
        return StrategyResponse(PROBABILISTIC, operation_sampling=sampling)

    # -- the admin API

    def document(self) -> Mapping[str, Any]:
        """The file's document as this process serves it (after a check for a newer one)."""
        if not self.path:
            raise NoStrategiesFile()
        self._maybe_reload(force=True)
        strategies = self._loaded.strategies
        if strategies is None:
            raise StrategiesUnavailable(self._problem or "the strategies file has not been loaded")
        return strategies.document

    def replace(self, document: Any) -> Strategies:
        """Validate ``document`` (``StrategiesError`` names the wrong field), write it atomically to the
        file and serve it in this process at once; the other processes see it at their next check."""
        if not self.path:
            raise NoStrategiesFile()
        strategies = from_document(document)
        write_atomically(Path(self.path), json.dumps(document, indent=2).encode() + b"\n")
        with self._reload_lock:
            self._loaded = _Loaded(strategies, build(strategies, self._default_probability), _stat(self.path))
            self._problem = None
        log.info("sampling strategies replaced through the admin API (%s)", self.path)
        return strategies

    # -- loading

    def _load_at_start(self) -> None:
        try:
            self._read(_stat(self.path))
        except (OSError, StrategiesError) as exc:
            # The master refuses a bad file before forking (file_problem); a worker that starts later,
            # while the file is bad, has nothing good to keep: it answers 503 until the file is fixed.
            self._problem = f"{self.path}: {exc}"
            log.error("sampling strategies not loaded, answering 503 until the file is fixed: %s", self._problem)

    def _maybe_reload(self, force: bool = False) -> None:
        if not self.path or (not force and self._clock() < self._next_check):
            return
        # One thread checks; the others serve what is loaded meanwhile.
        if not self._reload_lock.acquire(blocking=force):
            return
        try:
            self._next_check = self._clock() + self._interval
            self._check_file()
        finally:
            self._reload_lock.release()

    def _check_file(self) -> None:
        try:
            stat = _stat(self.path)
        except OSError as exc:
            self._complain(None, f"cannot read {self.path} ({exc.strerror or exc}); keeping the strategies loaded")
            return
        if stat == self._loaded.stat or stat == self._bad_stat:
            return
        try:
            self._read(stat)
        except (OSError, StrategiesError) as exc:
            self._complain(stat, f"{self.path} is not valid, keeping the strategies loaded before: {exc}")

    def _read(self, stat: _Stat) -> None:
        strategies = parse(Path(self.path).read_bytes())
        self._loaded = _Loaded(strategies, build(strategies, self._default_probability), stat)
        self._problem = None
        self._bad_stat = None
        self._complaint = ""
        log.info("sampling strategies loaded from %s: %d services", self.path, len(strategies.services))

    def _complain(self, stat: _Stat | None, problem: str) -> None:
        # Said once per problem, not at every check.
        if problem != self._complaint:
            log.error("sampling strategies: %s", problem)
        self._complaint = problem
        self._bad_stat = stat
        if self._loaded.strategies is None:
            self._problem = problem


def _stat(path: str) -> _Stat:
    st = os.stat(path)
    # The inode too: a rename within the same clock tick, with the same size, is still a new file.
    return _Stat(st.st_ino, st.st_size, st.st_mtime_ns)
