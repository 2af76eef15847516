"""``tracesearch alerts list`` and ``tracesearch alerts test RULE_FILE``.

``test`` exits 0 when nothing would fire, 1 when something would, 2 when the file is invalid or the
rules could not be evaluated (storage unavailable, a query the store refuses). ``list`` exits 2 too when
the file is invalid or the current alerts cannot be read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from tracesearch.alerting import report
from tracesearch.alerting.dry_run import Evaluate, dry_run
from tracesearch.alerting.rules import RulesError, parse
from tracesearch.alerting.ruleset import RuleSet, file_problem
from tracesearch.alerting.views import AlertStateReader
from tracesearch.settings import SettingsError, parse_seconds
from tracesearch.storage.contracts import StorageUnavailable

NOTHING_FIRES = 0
SOMETHING_FIRES = 1
INVALID = 2


def list_alerts(ruleset: RuleSet, state: AlertStateReader, out: TextIO) -> int:
    """The rules of the configured file with how many of their alerts fire, then the current alerts."""
    if not ruleset.configured:
        print("no rules file: set TRACESEARCH_ALERTS_RULES_FILE", file=out)
        return INVALID
    problem = file_problem(ruleset.path)
    if problem:
        print(f"invalid rules file: {problem}", file=out)
        return INVALID
    try:
        alerts = state.current()
    except StorageUnavailable as exc:
        print(f"alerts list: cannot read the current alerts: {exc}", file=out)
        return INVALID
    print(report.rules_table(ruleset.rules(), alerts), file=out)
    print(file=out)
    print(report.alerts_table(alerts) if alerts else "no pending or firing alerts", file=out)
    return NOTHING_FIRES


def run_test(
    path: str, since: str, step: str, evaluator: Evaluate | None, out: TextIO, now_ns: int | None = None
) -> int:
    """Validate ``path``, then evaluate its rules over the last ``since`` (nothing stored, nobody told)."""
    try:
        since_s = parse_seconds("--since", since)
        step_s = parse_seconds("--step", step)
    except SettingsError as exc:
        print(f"alerts test: {exc}", file=out)
        return INVALID
    try:
        rules = parse(Path(path).read_bytes()).rules
    except OSError as exc:
        print(f"{path}: cannot read it ({exc.strerror or exc})", file=out)
        return INVALID
    except RulesError as exc:
        print(f"{path}: {exc}", file=out)
        return INVALID
    print(f"{path}: {len(rules)} rules, valid", file=out)
    if evaluator is None or not rules:
        return NOTHING_FIRES
    now = time.time_ns() if now_ns is None else now_ns
    try:
        fired = dry_run(rules, evaluator, now, max(since_s, step_s), max(step_s, 1.0))
    except Exception as exc:  # storage down, a query refused: said, not a traceback
        print(f"alerts test: could not evaluate: {exc}", file=out)
        return INVALID
    if not fired:
        print(f"nothing would have fired in the last {since}", file=out)
        return NOTHING_FIRES
    print(report.would_fire_table(fired), file=out)
    return SOMETHING_FIRES
