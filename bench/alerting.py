"""Alert evaluation cost: 100 rules over the stored query data set (benchmark 2's million spans).

``python -m bench.alerting [--es-url URL] [--prefix bench-q] [--cycles 5] [--write]``: evaluates 100 rules (a
mix of what teams write: p95/p99 latency, error rate and request rate per service and operation,
attribute-scoped latency, span-filter counts, TraceQL metrics queries) at the data set's end, cycle after
cycle, as the runner does. Reports per cycle the wall time, Elasticsearch's own query time (its search
statistics on the data set's indices before and after) and the share of rules answered from the
per-minute span metrics; ``--write`` replaces the section in BENCHMARKS.md. Needs the data set loaded
(``make bench`` or ``python -m bench`` loads it once).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench import es, sections
from bench.dataset import _read_meta
from tracesearch.alerting.evaluate import SPAN_METRICS, Evaluator
from tracesearch.alerting.rules import Rule, Scope
from tracesearch.services.query import QueryService
from tracesearch.settings import Settings
from tracesearch.storage.es.aggregate_reader import EsAggregateReader
from tracesearch.storage.es.client import make_client
from tracesearch.storage.es.span_reader import EsSpanReader

REPORT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
SECTION = "## 5. Alert evaluation: 100 rules over the stored data set"
TARGET_S = 2.0
RULES = 100


def _rule(name: str, metric: str, scope: Scope, **extra: object) -> Rule:
    base: dict[str, object] = {"quantile": None, "filter": None, "query": None, "op": ">", "threshold": 1.0}
    base.update(extra)
    return Rule(name=name, metric=metric, scope=scope, window_s=base.pop("window_s", 300.0), **base)  # type: ignore[arg-type]


def rules(services: list[str], operations: dict[str, list[str]]) -> list[Rule]:
    """100 rules: per service, then per (service, operation), cycling through the kinds of rule."""
    made: list[Rule] = []
    for service in services:
        scope = Scope(service=service)
        made += [
            _rule(f"{service}-p95", "latency", scope, quantile=0.95, group_by=("operation",)),
            _rule(f"{service}-errors", "error_rate", scope, threshold=0.05, group_by=("operation",)),
            _rule(f"{service}-rps", "request_rate", scope, op="<", threshold=0.01),
            _rule(f"{service}-5xx", "span_rate", scope, filter="{ span.http.status_code >= 500 }"),
            _rule(
                f"{service}-traceql",
                "traceql",
                Scope(),
                query=f'{{ resource.service.name = "{service}" }} | quantile_over_time(duration, 0.99) by (name)',
            ),
        ]
    pairs = [(s, op) for s in services for op in operations[s]]
    kinds = ("latency", "error_rate", "latency-attr", "request_rate")
    i = 0
    while len(made) < RULES and pairs:
        service, op = pairs[i % len(pairs)]
        kind = kinds[i % len(kinds)]
        scope = Scope(service=service, operation=op, span_kind="server")
        name = f"r{i}"
        if kind == "latency":
            made.append(_rule(name, "latency", scope, quantile=0.99, threshold=0.5))
        elif kind == "error_rate":
            made.append(_rule(name, "error_rate", scope, threshold=0.01, window_s=600.0))
        elif kind == "request_rate":
            made.append(_rule(name, "request_rate", scope, op="<", threshold=0.1))
        else:  # an attribute in the scope: answered from the spans
            attr_scope = Scope(service=service, operation=op, attributes={"span.http.method": "GET"})
            made.append(_rule(name, "latency", attr_scope, quantile=0.95, threshold=0.5))
        i += 1
    return made[:RULES]


def _search_ms(es_url: str, prefix: str) -> float:
    stats = es.call(es_url, "GET", f"/{prefix}-*/_stats/search")["_all"]["total"]["search"]
    return float(stats["query_time_in_millis"] + stats["fetch_time_in_millis"])


def run(es_url: str, prefix: str, cycles: int) -> dict[str, float | int]:
    found = _read_meta(es_url, prefix)
    if found is None:
        raise SystemExit(f"no data set under {prefix}: run `python -m bench` once to load it")
    settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
    client = make_client(settings)
    spans = EsSpanReader(client, prefix, settings.trace_lookback_s, settings.max_trace_duration_s)
    aggregates = EsAggregateReader(client, prefix)
    evaluator = Evaluator(QueryService(spans, aggregates), aggregates)
    operations = {s: [name for name, kind in spans.operations(s) if kind == "server"][:6] for s in found.services}
    chosen = rules(found.services, operations)
    walls, es_ms, red_share, failures, samples = [], [], 0.0, 0, 0
    for _ in range(cycles):
        before, started, from_red = _search_ms(es_url, prefix), time.perf_counter(), 0
        for rule in chosen:
            try:
                samples += len(evaluator.evaluate(rule, found.end_ns))
            except Exception as exc:
                failures += 1
                print(f"rule {rule.name}: {exc}")
                continue
            from_red += evaluator.last_source == SPAN_METRICS
        walls.append(time.perf_counter() - started)
        es_ms.append(_search_ms(es_url, prefix) - before)
        red_share = from_red / len(chosen)
    return {
        "rules": len(chosen),
        "cycles": cycles,
        "wall_p50_s": statistics.median(walls),
        "wall_max_s": max(walls),
        "es_ms_p50": statistics.median(es_ms),
        "es_ms_max": max(es_ms),
        "span_metrics_share": red_share,
        "failures": failures,
        "samples": samples // cycles,
        "spans": found.spans,
    }


def section(result: dict[str, float | int]) -> str:
    met = "met" if result["wall_max_s"] < TARGET_S else "missed"
    wall_p50, wall_max = f"{result['wall_p50_s']:.2f} s", f"{result['wall_max_s']:.2f} s"
    return f"""{SECTION}

{result["rules"]} rules (per service: p95 by operation, error rate by operation, request rate, a span-filter
rate, a TraceQL `quantile_over_time` by name; per server operation: p99 latency, error rate, request rate,
and latency scoped by an attribute), evaluated at the end of the {result["spans"]:,}-span data set of
benchmark 2, {result["cycles"]} cycles one after the other, as the runner does (`python -m bench.alerting`).
Elasticsearch time: its own search statistics (query + fetch) on the data set's indices over the cycle.

| Per cycle | p50 | max | target |
| --- | --- | --- | --- |
| wall time (evaluation of every rule, client side) | {wall_p50} | {wall_max} | < {TARGET_S:g} s: {met} |
| Elasticsearch query time | {result["es_ms_p50"]:.0f} ms | {result["es_ms_max"]:.0f} ms | context |

Share of rules answered from the per-minute span metrics: {result["span_metrics_share"]:.0%} (the rest through
TraceQL metrics over the span documents); label sets evaluated per cycle: {result["samples"]}; rules that
failed: {result["failures"]}.
"""


def replace_section(report: str, text: str) -> str:
    """The report with this section replaced, or added at its end."""
    return sections.replace_section(report, SECTION, text)


def write(text: str) -> None:
    REPORT.write_text(replace_section(REPORT.read_text(), text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    parser.add_argument("--prefix", default="bench-q")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = parser.parse_args()
    text = section(run(args.es_url.rstrip("/"), args.prefix, args.cycles))
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
