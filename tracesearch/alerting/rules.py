"""PLACEHOLDER for helper A's rule model (branch alerts-rules): only the spec's two dataclasses, so the
evaluator and runner of this branch import. At merge, A's rules.py replaces this file whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scope:
    service: str | None = None
    operation: str | None = None
    span_kind: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    quantile: float | None
    filter: str | None
    query: str | None
    scope: Scope
    op: str
    threshold: float
    window_s: float
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    group_by: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    severity: str = "warning"
