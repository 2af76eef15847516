"""The strategy a service is served: precedence of the file, the adaptive overlay and the default; the
file reloaded when it changes (at most once per interval), a bad file never replacing a good one, and
the admin API's atomic write."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tracesearch.sampling.provider import (
    NoStrategiesFile,
    StrategiesUnavailable,
    StrategyProvider,
    file_problem,
)
from tracesearch.sampling.strategies import StrategiesError

INTERVAL_S = 5.0
LISTED = {"service": "listed", "type": "probabilistic", "param": 0.3}
FILE = {"default_strategy": {"type": "probabilistic", "param": 0.5}, "service_strategies": [LISTED]}


class FakeAdaptive:
    """What adaptive sampling (issue 11, item 2) provides: probabilities for the services it computed."""

    def __init__(self, computed: Mapping[str, Mapping[str, float]]):
        self.computed = computed

    def probabilities(self, service: str) -> Mapping[str, float] | None:
        return self.computed.get(service)

    def default_probability(self) -> float:
        return 0.01


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, document: Any) -> None:
    path.write_text(document if isinstance(document, str) else json.dumps(document))


def provider(path: Path | str, clock: Clock | None = None, adaptive: FakeAdaptive | None = None) -> StrategyProvider:
    return StrategyProvider(
        str(path),
        reload_interval_s=INTERVAL_S,
        default_probability=1.0,
        adaptive=adaptive,
        adaptive_lower_bound_tps=0.0167,
        clock=clock or Clock(),
    )


def rate(p: StrategyProvider, service: str) -> float | None:
    return p.strategy(service).probability


def test_without_a_file_everything_is_kept() -> None:
    p = provider("")
    assert p.strategy("any").to_json() == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": 1.0},
    }
    with pytest.raises(NoStrategiesFile):
        p.document()
    with pytest.raises(NoStrategiesFile):
        p.replace({})


def test_precedence_file_then_adaptive_then_the_files_default(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    write(path, FILE)
    adaptive = FakeAdaptive({"listed": {"GET /": 0.9}, "computed": {"GET /b": 0.2, "GET /a": 0.05}})
    p = provider(path, adaptive=adaptive)
    assert rate(p, "listed") == 0.3  # in the file: the file wins over adaptive
    assert p.strategy("computed").to_json() == {
        "strategyType": "PROBABILISTIC",
        "operationSampling": {
            "defaultSamplingProbability": 0.01,
            "defaultLowerBoundTracesPerSecond": 0.0167,
            "perOperationStrategies": [
                {"operation": "GET /a", "probabilisticSampling": {"samplingRate": 0.05}},
                {"operation": "GET /b", "probabilisticSampling": {"samplingRate": 0.2}},
            ],
            "defaultUpperBoundTracesPerSecond": 0.0,
        },
    }
    assert rate(p, "not-computed") == 0.5  # the file's default_strategy


def test_adaptive_without_a_file(tmp_path: Path) -> None:
    p = StrategyProvider("", reload_interval_s=1, default_probability=1.0, adaptive=FakeAdaptive({"s": {"op": 0.1}}))
    assert p.strategy("s").operation_sampling is not None
    assert rate(p, "other") == 1.0


def test_a_change_is_seen_after_the_reload_interval_not_before(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    write(path, FILE)
    clock = Clock()
    p = provider(path, clock)
    write(path, {"default_strategy": {"type": "probabilistic", "param": 0.1}})
    clock.now += INTERVAL_S - 0.1
    assert rate(p, "x") == 0.5
    clock.now += 0.2
    assert rate(p, "x") == 0.1
    assert rate(p, "listed") == 0.1  # no longer listed


def test_a_change_of_same_size_and_time_is_seen_through_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    write(path, FILE)
    clock = Clock()
    p = provider(path, clock)
    before = path.stat()
    replacement = tmp_path / "new.json"
    write(replacement, json.dumps(FILE).replace("0.3", "0.4"))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)
    clock.now += INTERVAL_S
    assert rate(p, "listed") == 0.4


def test_a_bad_file_on_reload_keeps_the_last_good_one_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "strategies.json"
    write(path, FILE)
    clock = Clock()
    p = provider(path, clock)
    write(path, {"service_strategies": [{"service": "listed", "type": "probabilistic", "param": 7}]})
    with caplog.at_level(logging.ERROR, logger="tracesearch.sampling.provider"):
        for _ in range(3):
            clock.now += INTERVAL_S
            assert rate(p, "listed") == 0.3
    complaints = [r.getMessage() for r in caplog.records]
    assert len(complaints) == 1, "said once, not at every check"
    assert "service_strategies[0].param: must be within [0, 1]" in complaints[0]
    assert "keeping the strategies loaded" in complaints[0]
    path.unlink()
    clock.now += INTERVAL_S
    assert rate(p, "listed") == 0.3  # removed: still the last good one
    write(path, {"default_strategy": {"type": "probabilistic", "param": 0.2}})
    clock.now += INTERVAL_S
    assert rate(p, "listed") == 0.2


def test_a_process_started_on_a_bad_file_answers_unavailable_until_it_is_fixed(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    write(path, "{not json")
    clock = Clock()
    p = provider(path, clock)
    with pytest.raises(StrategiesUnavailable, match="not JSON"):
        p.strategy("x")
    write(path, FILE)
    clock.now += INTERVAL_S
    assert rate(p, "listed") == 0.3


def test_file_problem_is_what_stops_the_service_at_start(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    assert file_problem("") is None
    assert "cannot read it" in (file_problem(str(path)) or "")
    write(path, {"default_strategy": {"type": "ratelimiting", "param": 1.5}})
    problem = file_problem(str(path)) or ""
    assert problem.startswith(f"TRACESEARCH_SAMPLING_STRATEGIES_FILE={path}: default_strategy.param: must be a whole")
    write(path, FILE)
    assert file_problem(str(path)) is None


def test_replace_validates_then_writes_atomically_and_serves_at_once(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    write(path, FILE)
    path.chmod(0o640)
    p = provider(path)
    with pytest.raises(StrategiesError, match=r"service_strategies\[0\]\.type"):
        p.replace({"service_strategies": [{"service": "a", "type": "nope", "param": 1}]})
    assert json.loads(path.read_text()) == FILE  # refused: the file is untouched
    new = {"service_strategies": [{"service": "listed", "type": "probabilistic", "param": 0.1}]}
    p.replace(new)
    assert rate(p, "listed") == 0.1  # this process, without waiting for the interval
    assert json.loads(path.read_text()) == new
    assert p.document() == new
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(f.name for f in tmp_path.iterdir()) == ["strategies.json"]  # no temporary file left


def test_another_process_sees_a_replacement_within_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    write(path, FILE)
    clock = Clock()
    writer, reader = provider(path, clock), provider(path, clock)
    writer.replace({"default_strategy": {"type": "probabilistic", "param": 0.05}})
    clock.now += INTERVAL_S
    assert rate(reader, "x") == 0.05
