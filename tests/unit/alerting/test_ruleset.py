"""The rule set: reloaded on change at most every interval, the last good rules kept on a bad file
(said once, and on the gauges), and a bad file at start named for the service's start-up check."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tracesearch.alerting.ruleset import NoRulesFile, RuleSet, RulesUnavailable, file_problem

ONE = "rules:\n  - {name: a, metric: request_rate, threshold: 1}\n"
TWO = ONE + "  - {name: b, metric: error_rate, threshold: 0.1}\n"
BAD = "rules:\n  - {name: a, metric: request_rate, threshold: high}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def no_states() -> list[tuple[bool, int]]:
    return []


def make(path: Path, clock: Clock, states: list[tuple[bool, int]]) -> RuleSet:
    return RuleSet(str(path), reload_interval_s=5, on_state=lambda v, n: states.append((v, n)), clock=clock)


def write(path: Path, text: str) -> None:
    path.write_text(text)
    # A distinct mtime even within the clock's resolution.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_reloaded_on_change_at_most_every_interval(tmp_path: Path) -> None:
    path, clock, states = tmp_path / "rules.yaml", Clock(), no_states()
    write(path, ONE)
    ruleset = make(path, clock, states)
    assert [r.name for r in ruleset.rules()] == ["a"] and states == [(True, 1)]
    write(path, TWO)
    clock.now = 4.9
    assert len(ruleset.rules()) == 1, "not before the interval"
    clock.now = 5.0
    assert [r.name for r in ruleset.rules()] == ["a", "b"] and states[-1] == (True, 2)


def test_a_bad_file_keeps_the_last_good_rules_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock, states = tmp_path / "rules.yaml", Clock(), no_states()
    write(path, TWO)
    ruleset = make(path, clock, states)
    write(path, BAD)
    with caplog.at_level(logging.ERROR):
        for step in range(1, 4):
            clock.now = 5.0 * step
            assert [r.name for r in ruleset.rules()] == ["a", "b"]
    complaints = [r.getMessage() for r in caplog.records]
    assert len(complaints) == 1
    assert "rules[0].threshold: must be a number; keeping the 2 rules loaded before" in complaints[0]
    assert not ruleset.valid and states[-1] == (False, 2)
    assert "rules[0].threshold" in ruleset.problem
    assert ruleset.document()["rules"][1]["name"] == "b", "the API shows what is served"
    write(path, ONE)
    clock.now = 20.0
    assert len(ruleset.rules()) == 1 and ruleset.valid and states[-1] == (True, 1)


def test_a_missing_file_keeps_the_rules_too(tmp_path: Path) -> None:
    path, clock, states = tmp_path / "rules.yaml", Clock(), no_states()
    write(path, ONE)
    ruleset = make(path, clock, states)
    path.unlink()
    clock.now = 5.0
    assert len(ruleset.rules()) == 1 and states[-1] == (False, 1)
    assert "cannot read" in ruleset.problem


def test_a_bad_file_at_start_gives_no_rules_and_a_503_reason(tmp_path: Path) -> None:
    path, states = tmp_path / "rules.yaml", no_states()
    write(path, BAD)
    ruleset = make(path, Clock(), states)
    assert ruleset.rules() == () and states == [(False, 0)]
    with pytest.raises(RulesUnavailable, match=r"rules\[0\].threshold"):
        ruleset.document()


def test_file_problem_is_what_stops_the_service(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    assert file_problem("") is None
    assert (
        file_problem(str(path)) == f"TRACESEARCH_ALERTS_RULES_FILE={path}: cannot read it (No such file or directory)"
    )
    write(path, BAD)
    assert file_problem(str(path)) == f"TRACESEARCH_ALERTS_RULES_FILE={path}: rules[0].threshold: must be a number"
    write(path, ONE)
    assert file_problem(str(path)) is None


def test_replace_validates_writes_atomically_and_serves_at_once(tmp_path: Path) -> None:
    path, clock, states = tmp_path / "rules.yaml", Clock(), no_states()
    write(path, ONE)
    path.chmod(0o640)
    ruleset = make(path, clock, states)
    document = {"rules": [{"name": "z", "metric": "latency", "quantile": "p99", "threshold": 2, "for": "1m"}]}
    ruleset.replace(document)
    assert [r.name for r in ruleset.rules()] == ["z"] and states[-1] == (True, 1)
    assert path.read_text().startswith("# Alert rules (tracesearch)")
    assert RuleSet(str(path), reload_interval_s=5).document() == document, "written as YAML, read back the same"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yaml"], "no temporary file left"
    from tracesearch.alerting.rules import RulesError

    with pytest.raises(RulesError):
        ruleset.replace({"rules": [{"name": "z"}]})
    assert RuleSet(str(path), reload_interval_s=5).document() == document, "a refused document is not written"


def test_without_a_file(tmp_path: Path) -> None:
    states: list[tuple[bool, int]] = []
    ruleset = RuleSet("", reload_interval_s=5, on_state=lambda v, n: states.append((v, n)))
    assert ruleset.rules() == () and not ruleset.configured and states == [(True, 0)]
    with pytest.raises(NoRulesFile):
        ruleset.document()
    with pytest.raises(NoRulesFile):
        ruleset.replace({"rules": []})


def test_the_watcher_thread_reloads_without_being_asked(tmp_path: Path) -> None:
    import time

    path, states = tmp_path / "rules.yaml", no_states()
    write(path, ONE)
    ruleset = RuleSet(str(path), reload_interval_s=0.05, on_state=lambda v, n: states.append((v, n)))
    ruleset.start()
    try:
        write(path, BAD)
        deadline = time.monotonic() + 5
        while states[-1] != (False, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert states[-1] == (False, 1)
    finally:
        ruleset.stop()
