"""Spans of a small shop in the in-memory store, with their span metrics, for the alerting tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from tracesearch.alerting.rules import Rule, Scope
from tracesearch.model import Resource, Span, SpanKind, StatusCode
from tracesearch.model import Scope as SpanScope
from tracesearch.servicegraph.stage import ServiceGraphStage, StageConfig
from tracesearch.storage.memory import MemoryStore

S = 1_000_000_000
MS = 1_000_000
NOW_NS = 1_699_999_980 * S + 30 * S  # half a minute into a minute
_ids = itertools.count(1)


def span(service: str, name: str, duration_ms: float, at_ns: int, error: bool = False, route: str = "/pay") -> Span:
    n = next(_ids)
    return Span(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        name=name,
        start_ns=at_ns,
        end_ns=at_ns + int(duration_ms * MS),
        resource=Resource(service_name=service),
        scope=SpanScope(),
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR if error else StatusCode.UNSET,
        attributes={"http.route": route},
    )


def store_with(spans: Sequence[Span]) -> MemoryStore:
    """The spans stored, and their span metrics written as the service-graph stage writes them."""
    store = MemoryStore(clock=lambda: NOW_NS)
    store.write(spans)
    stage = ServiceGraphStage(
        StageConfig(wait_s=0, flush_interval_s=3600), store, store.aggregates, lambda *_: None, "test"
    )
    stage.observe(list(spans))
    stage.close()
    return store


def rule(metric: str = "latency", **changes: object) -> Rule:
    base: dict[str, object] = {
        "name": "pay-p95",
        "metric": metric,
        "quantile": 0.95 if metric == "latency" else None,
        "filter": None,
        "query": None,
        "scope": Scope(service="checkout", operation="POST /pay", span_kind="server"),
        "op": ">",
        "threshold": 1.0,
        "window_s": 300.0,
    }
    base.update(changes)
    return Rule(**base)  # type: ignore[arg-type]
