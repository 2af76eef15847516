"""STUB until helper A's ``alerting/ruleset.py`` is merged: reads the rules file (JSON in A's documented
YAML shape, which is YAML too) at every call, without validation. At merge, components hands the runner
``RuleSet.rules`` instead and this file goes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tracesearch.alerting.rules import Rule, Scope
from tracesearch.settings import parse_seconds


def _rule(entry: dict[str, Any]) -> Rule:
    seconds = {key: parse_seconds(key, str(entry[key])) for key in ("window", "for", "keep_firing_for") if key in entry}
    return Rule(
        name=entry["name"],
        metric=entry["metric"],
        quantile=entry.get("quantile"),
        filter=entry.get("filter"),
        query=entry.get("query"),
        scope=Scope(**entry.get("scope", {})),
        op=entry.get("op", ">"),
        threshold=float(entry["threshold"]),
        window_s=seconds.get("window", 300.0),
        for_s=seconds.get("for", 0.0),
        keep_firing_for_s=seconds.get("keep_firing_for", 0.0),
        group_by=tuple(entry.get("group_by", ())),
        labels=entry.get("labels", {}),
        annotations=entry.get("annotations", {}),
        severity=entry.get("severity", "warning"),
    )


def file_rules(path: str) -> Callable[[], Sequence[Rule]]:
    def rules() -> Sequence[Rule]:
        if not path:
            return ()
        with open(path, encoding="utf-8") as f:
            return tuple(_rule(entry) for entry in json.load(f).get("rules", []))

    return rules
