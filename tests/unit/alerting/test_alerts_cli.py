"""``tracesearch alerts test`` and ``alerts list`` with a fake evaluator and a memory state: what would
fire is printed, nothing else happens, and the exit code says which case it was."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import pytest

from tracesearch.alerting.command import list_alerts, run_test
from tracesearch.alerting.dry_run import dry_run, steps
from tracesearch.alerting.evaluate import Sample
from tracesearch.alerting.rules import Rule, from_document
from tracesearch.alerting.ruleset import RuleSet
from tracesearch.alerting.views import AlertView, MemoryAlertState
from tracesearch.cli import main

S = 1_000_000_000
NOW = 1_767_229_200 * S  # 2026-01-01T01:00:00Z
FILE = """rules:
  - name: p95
    metric: latency
    quantile: 0.95
    threshold: 0.5
    for: 5m
    group_by: [operation]
  - name: errors
    metric: error_rate
    threshold: 0.1
"""


def sample(labels: Mapping[str, str], value: float) -> Sample:
    return Sample(labels, value, "test")


class Fake:
    """p95 of /pay is 0.8 s from 00:20 to 00:40, 0.1 s otherwise; /home stays 0.1 s; errors stay 0."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def evaluate(self, rule: Rule, now_ns: int) -> list[Sample]:
        self.calls.append((rule.name, now_ns))
        if rule.name == "errors":
            return [sample({}, 0.0)]
        slow = NOW - 40 * 60 * S <= now_ns <= NOW - 20 * 60 * S
        pay: Mapping[str, str] = {"operation": "/pay"}
        return [sample(pay, 0.8 if slow else 0.1), sample({"operation": "/home"}, 0.1)]


def run(path: Path, evaluator: Fake | None, since: str = "1h") -> tuple[int, str]:
    out = io.StringIO()
    code = run_test(str(path), since, "1m", evaluator, out, now_ns=NOW)
    return code, out.getvalue()


def test_what_would_fire_is_printed_with_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(FILE)
    fake = Fake()
    code, out = run(path, fake)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{path}: 2 rules, valid"
    assert lines[1].split() == ["RULE", "VALUE", "THRESHOLD", "FIRING", "FROM", "NOW", "LABELS"]
    # Breaching from 00:20, firing after `for: 5m`, at 00:25; over by 00:41 (no keep_firing_for).
    assert lines[2].split() == ["p95", "0.8", ">", "0.5", "2026-01-01", "00:25:00Z", "resolved", "operation=/pay"]
    assert len(lines) == 3
    assert len(fake.calls) == 2 * 61 and fake.calls[0] == ("p95", NOW - 3600 * S) and fake.calls[60] == ("p95", NOW)


def test_nothing_fires_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(FILE)
    code, out = run(path, Fake(), since="15m")
    assert code == 0 and out.splitlines()[-1] == "nothing would have fired in the last 15m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{name: a, metric: latency, threshold: 1}]", "rules[0].quantile: is required with metric latency"),
        ("rules: [", "not YAML"),
    ],
)
def test_an_invalid_file_exits_2_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    fake = Fake()
    code, out = run(path, fake)
    assert code == 2 and message in out and fake.calls == []


def test_unreadable_file_bad_since_and_failing_evaluation_exit_2(tmp_path: Path) -> None:
    assert run(tmp_path / "missing.yaml", Fake())[0] == 2
    path = tmp_path / "rules.yaml"
    path.write_text(FILE)
    code, out = run(path, Fake(), since="an hour")
    assert code == 2 and "--since='an hour'" in out

    class Down(Fake):
        def evaluate(self, rule: Rule, now_ns: int) -> list[Sample]:
            raise ConnectionError("Elasticsearch unavailable")

    code, out = run(path, Down())
    assert code == 2 and "could not evaluate: Elasticsearch unavailable" in out


def test_for_and_keep_firing_for() -> None:
    rule = from_document(
        {"rules": [{"name": "r", "metric": "request_rate", "threshold": 1, "for": "2m", "keep_firing_for": "3m"}]}
    ).rules[0]
    values = iter([2, 2, 0, 2, 2, 2, 5, 0, 0, 0, 0, 0])

    class Series:
        def evaluate(self, rule: Rule, now_ns: int) -> list[Sample]:
            return [sample({}, float(next(values)))]

    times = steps(NOW, 11 * 60, 60)
    [fired] = dry_run([rule], Series(), NOW, 11 * 60, 60)
    # Breaching at steps 3, 4, 5: firing from step 5 (2 minutes later); the dip at step 2 reset `for`.
    assert fired.started_ns == times[5] and fired.value == 5.0
    assert not fired.firing_now, "quiet for 5 minutes > keep_firing_for 3m"


def test_keep_firing_for_holds_it_at_the_end() -> None:
    rule = from_document(
        {"rules": [{"name": "r", "metric": "request_rate", "threshold": 1, "op": "<", "keep_firing_for": "10m"}]}
    ).rules[0]

    class Series:
        def evaluate(self, rule: Rule, now_ns: int) -> list[Sample]:
            return [sample({}, 0.5 if now_ns == NOW - 120 * S else 3.0)]

    [fired] = dry_run([rule], Series(), NOW, 600, 60)
    assert fired.firing_now and fired.value == 0.5


def test_steps_are_bounded() -> None:
    assert len(steps(NOW, 86400, 60)) == 61 and steps(NOW, 60, 60) == [NOW - 60 * S, NOW]


def test_list_prints_rules_and_current_alerts(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(FILE)
    alert = AlertView("p95", "f", {"operation": "/pay"}, {}, "firing", 0.8, 0.5, ">", NOW - 600 * S, NOW - 300 * S, NOW)
    out = io.StringIO()
    assert list_alerts(RuleSet(str(path), reload_interval_s=5), MemoryAlertState([alert]), out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "RULE",
        "METRIC",
        "SCOPE",
        "CONDITION",
        "WINDOW",
        "FOR",
        "SEVERITY",
        "FIRING",
        "PENDING",
    ]
    assert lines[1].split() == ["p95", "p95", "latency", "-", ">", "0.5", "5m", "5m", "warning", "1", "0"]
    assert lines[2].split() == ["errors", "error_rate", "-", ">", "0.1", "5m", "0s", "warning", "0", "0"]
    assert lines[4].split() == ["RULE", "STATE", "VALUE", "THRESHOLD", "SINCE", "LABELS"]
    assert lines[5].split() == ["p95", "firing", "0.8", ">", "0.5", "2026-01-01", "00:55:00Z", "operation=/pay"]


def test_list_without_or_with_a_bad_file(tmp_path: Path) -> None:
    out = io.StringIO()
    assert list_alerts(RuleSet("", reload_interval_s=5), MemoryAlertState(), out) == 2
    assert "TRACESEARCH_ALERTS_RULES_FILE" in out.getvalue()
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: a}]")
    out = io.StringIO()
    assert list_alerts(RuleSet(str(path), reload_interval_s=5), MemoryAlertState(), out) == 2
    assert "rules[0].metric" in out.getvalue()


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: a, metric: request_rate, threshold: x}]")
    assert main(["alerts", "test", str(path)]) == 2
    assert "rules[0].threshold: must be a number" in capsys.readouterr().out


def test_list_says_when_the_store_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on port 9: a line saying so and exit 2, not a traceback (the answer with a running
    store is in tests/integration/test_alert_store.py)."""
    path = tmp_path / "rules.yaml"
    path.write_text(FILE)
    monkeypatch.setenv("TRACESEARCH_ALERTS_RULES_FILE", str(path))
    monkeypatch.setenv("TRACESEARCH_ES_URL", "http://127.0.0.1:9")
    assert main(["alerts", "list"]) == 2
    assert capsys.readouterr().out.splitlines()[-1].startswith("alerts list: cannot read the current alerts: ")
