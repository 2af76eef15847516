"""Up to five example traces for an alert that starts firing, found through the query service's TraceQL
search (so they exist: the search returns stored traces): the slowest in the rule's scope and window
for a latency rule (over the threshold when the rule fires above it), failing ones for an error-rate
rule, and matching ones for span filters, request rates and TraceQL rules."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tracesearch.alerting import traceql_text
from tracesearch.alerting.rules import Rule
from tracesearch.query.search_results import FoundTrace
from tracesearch.query.traceql import parse
from tracesearch.services.query import QueryService

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
MAX_EXAMPLES = 5
# Traces searched to choose the slowest from: the search answers the newest, so ask for more than five.
CANDIDATES = 50


def search_filter(rule: Rule, labels: Mapping[str, str]) -> str:
    """The TraceQL spanset filter the examples come from (and the alert's search link opens)."""
    if rule.metric == "traceql":
        # A traceql rule's series labels name TraceQL fields (resource.service.name, name...) or extras ("p").
        labels = {k: v for k, v in labels.items() if "." in k or k in traceql_text.GROUP_FIELDS.values()}
    extra = []
    if rule.metric == "error_rate":
        extra.append("status = error")
    elif rule.metric == "latency" and rule.op in (">", ">="):
        extra.append(f"duration {rule.op} {rule.threshold * 1000:g}ms")
    return traceql_text.rule_filter(rule, labels, extra)


def _slowest_matched_ns(found: FoundTrace) -> int:
    return max((s.duration_ns for spanset in found.spansets for s in spanset.spans), default=0)


def example_trace_ids(query: QueryService, rule: Rule, labels: Mapping[str, str], now_ns: int) -> tuple[str, ...]:
    """Ids of up to five stored traces that show why the alert fires; () when the search fails."""
    start_ns = now_ns - int(rule.window_s * NS_PER_S)
    try:
        result = query.search(parse(search_filter(rule, labels)), start_ns, now_ns, CANDIDATES, 3)
    except Exception as exc:  # examples are a help: the notification goes without them
        log.warning("alert %s: could not find example traces: %s", rule.name, exc)
        return ()
    found = result.traces
    if rule.metric == "latency":
        found = sorted(found, key=_slowest_matched_ns, reverse=True)
    return tuple(t.trace[0].trace_id for t in found[:MAX_EXAMPLES] if t.trace)
