"""Tells the person running the demo where to look."""

from __future__ import annotations

import json
from shlex import quote

from demo.config import LOGS_INDEX, NOTE_SEARCH_WORD, SERVICES, STOREFRONT, expected_edges
from demo.traffic import DemoResult

# TraceQL the report prints beside the showcase query; tests parse every one with tracesearch's parser.
ERRORS_TRACEQL = '{resource.service.name="payments" && status=error}'
DATABASE_TRACEQL = '{resource.service.name="frontend"} >> {span.db.system="postgresql"}'
JAVA_DATABASE_TRACEQL = '{resource.service.name="inventory" && span.db.system="h2"}'
METRICS_TRACEQL = '{resource.service.name="frontend"} | quantile_over_time(duration, .5, .95) by (name)'
TAG_VALUES_PATH = "/api/v2/search/tag/resource.service.name/values"
DEPENDENCIES_LOOKBACK_MS = 3_600_000
# Zipkin's UI (Lens) on the dev stack's service (TRACESEARCH_UI_BASE_PATH's default).
UI_PATH = "/zipkin"
# In this repository (make demo runs from its root).
GRAFANA_DATASOURCES = "grafana/provisioning/datasources/tracesearch.yaml"
GRAFANA_DASHBOARDS = "grafana/provisioning/dashboards/tracesearch.yaml"
GRAFANA_DASHBOARD_DIR = "grafana/dashboards/"
GRAFANA_README = "grafana/README.md"
# How each hop of the trace carries its context (what the tests check hop by hop).
HOPS = (
    (STOREFRONT, "frontend", "uber-trace-id only (a Jaeger client's header)"),
    ("frontend", "checkout", "W3C traceparent"),
    ("checkout", "inventory", "W3C traceparent over HTTP, and in a Kafka record's headers (topic shop.orders)"),
    ("checkout", "payments", "W3C traceparent"),
    ("inventory", "recommendations", "B3 multi (X-B3-*); recommendations reads nothing else"),
    ("recommendations", "catalog", "B3 multi only: back into Python"),
)


def _crossing_lines(result: DemoResult) -> list[str]:
    languages = sorted({spec.runtime.language for spec in SERVICES})
    lines = [
        f"Trace {result.showcase_trace_id} came back whole: {result.view.spans} spans from "
        f"{len(result.services)} services in {', '.join(languages)} "
        f"({result.wait_seconds:.1f} s after the services stopped).",
        f"  {STOREFRONT:<16} the load generator, on a Jaeger client",
        *(f"  {spec.name:<16} {spec.runtime.value}" for spec in SERVICES),
        "Each hop kept the trace id:",
        *(f"  {caller} -> {callee}: {how}" for caller, callee, how in HOPS),
        "",
    ]
    return lines


def _logs_lines(result: DemoResult, es_url: str) -> list[str]:
    base, trace_id = result.base_url, result.showcase_trace_id
    per_service = ", ".join(f"{count} from {name}" for name, count in sorted(result.trace_logs.items()))
    return [
        f"Its log lines ({per_service}), shipped as ECS JSON into {LOGS_INDEX}:",
        f"  curl -s {quote(f'{base}/api/v1/traces/{trace_id}/logs')}",
        "  # the same lines straight from Elasticsearch, by trace.id",
        "  " + _get(es_url, f"/{LOGS_INDEX}/_search", q=f"trace.id:{trace_id}"),
        "",
    ]


def _search(base_url: str, service: str, tags: dict[str, str]) -> str:
    # -G + --data-urlencode keeps the JSON readable and still encodes it correctly.
    tag_arg = "tags=" + json.dumps(tags, separators=(",", ":"))
    return (
        f"curl -s -G {quote(base_url + '/api/traces')} "
        f"--data-urlencode service={service} --data-urlencode {quote(tag_arg)}"
    )


def _get(base_url: str, path: str, **params: str) -> str:
    """``curl -s -G URL --data-urlencode k=v ...`` (plain ``curl -s URL`` without parameters)."""
    args = "".join(f" --data-urlencode {quote(f'{key}={value}')}" for key, value in params.items())
    return f"curl -s{' -G' if params else ''} {quote(base_url + path)}{args}"


def _graph_lines(result: DemoResult) -> list[str]:
    if result.graph_complete is None:
        return []
    lines = [f"Service graph (GET /api/dependencies, after {result.graph_wait_seconds:.0f} s):"]
    lines += [f"  {parent} -> {child}: {calls} call(s)" for parent, child, calls in result.dependencies]
    if not result.dependencies:
        lines.append("  no edges yet.")
    if not result.graph_complete:
        seen = {(parent, child) for parent, child, _ in result.dependencies}
        missing = ", ".join(f"{parent} -> {child}" for parent, child in sorted(expected_edges() - seen))
        lines += [
            f"  Not there yet: {missing}. Spans wait TRACESEARCH_SERVICEGRAPH_WAIT (10 s) for their",
            "  partner and aggregates are written every TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL (5 s):",
            "  run the dependencies curl below again in a few seconds.",
        ]
    return [*lines, ""]


def _ui_lines(result: DemoResult) -> list[str]:
    """Links into Lens: the demo trace, and the dependency graph over the window the curls below ask for
    (Lens's dependency page reads startTime/endTime in ms from its URL)."""
    ui = f"{result.base_url}{UI_PATH}"
    dependency = f"{ui}/dependency"
    if result.finished_ms:
        start_ms = result.finished_ms - DEPENDENCIES_LOOKBACK_MS
        dependency += f"?startTime={start_ms}&endTime={result.finished_ms}"
    return [
        f"Zipkin UI (Lens; TRACESEARCH_UI=true, as in make demo): {ui}/",
        f"  the trace:        {ui}/traces/{result.showcase_trace_id}",
        f"  dependency graph: {dependency}",
        "",
    ]


def success_text(result: DemoResult, es_url: str) -> str:
    base, trace_id = result.base_url, result.showcase_trace_id
    end_ms = str(result.finished_ms)
    lookback_ms = str(DEPENDENCIES_LOOKBACK_MS)
    lines = [
        *_crossing_lines(result),
        f"{len(result.trace_ids)} orders sent; {len(result.error_trace_ids)} failed in payments"
        + (f" (e.g. trace {result.error_trace_ids[0]})." if result.error_trace_ids else "."),
    ]
    if result.tempo_found:
        lines.append(f"The Tempo API's TraceQL search finds it too: {result.traceql}")
    lines += [
        "",
        *_logs_lines(result, es_url),
        *_graph_lines(result),
        *_ui_lines(result),
        "Look at it, Jaeger API (search times in µs, dependencies in ms):",
        f"  curl -s {quote(f'{base}/api/traces/{trace_id}')}",
        f"  curl -s {quote(base + '/api/services')}",
        "  # failed orders: numeric comparison on the int http.response.status_code",
        "  " + _search(base, "frontend", {"http.response.status_code": ">=500"}),
        "  # free text over attribute values (a word from order.note)",
        "  " + _search(base, "frontend", {"_text": NOTE_SEARCH_WORD}),
        "  # calls between services over the hour before endTs",
        "  " + _get(base, "/api/dependencies", endTs=end_ms, lookback=lookback_ms),
        "",
        "Tempo API (TraceQL; start/end in unix seconds, metrics durations in seconds):",
        "  # the demo trace",
        "  " + _get(base, "/api/search", q=result.traceql or '{resource.service.name="frontend"}'),
        "  # failed orders",
        "  " + _get(base, "/api/search", q=ERRORS_TRACEQL),
        "  # orders that reached the database: a postgresql span below a frontend span",
        "  " + _get(base, "/api/search", q=DATABASE_TRACEQL),
        "  # the Java service's JDBC calls (spans of the OpenTelemetry Java agent)",
        "  " + _get(base, "/api/search", q=JAVA_DATABASE_TRACEQL),
        "  # the trace as OTLP JSON (protobuf with -H 'Accept: application/protobuf')",
        f"  curl -s {quote(f'{base}/api/v2/traces/{trace_id}')}",
        "  # tag autocomplete: the service names seen in the last 24 h (sampled)",
        f"  curl -s {quote(base + TAG_VALUES_PATH)}",
        "  # p50 and p95 latency of frontend per span name over the last hour (TraceQL metrics)",
        "  " + _get(base, "/api/metrics/query_range", q=METRICS_TRACEQL),
        "",
        "Zipkin API (endTs and lookback in ms, durations in µs):",
        f"  curl -s {quote(f'{base}/api/v2/trace/{trace_id}')}",
        "  " + _get(base, "/api/v2/dependencies", endTs=end_ms, lookback=lookback_ms),
        "",
        "Grafana (not started by the demo): Connections > Data sources > Add data source, URL for all three:",
        f"  URL:    {base}",
        "  Access: Server (proxy). Grafana's server makes the calls, so the URL must be",
        "          reachable from it (from a container: http://host.docker.internal:PORT).",
        "  Tempo:  turn Streaming OFF for search and metrics (tracesearch speaks HTTP/JSON, no gRPC).",
        f"          Explore > TraceQL: {result.traceql or ERRORS_TRACEQL}",
        "  Jaeger: Explore > Search, service 'frontend' (or any of the seven), or paste the trace id.",
        "  Zipkin: Explore > Traces > frontend, or paste the trace id.",
        "  Or provision them all, with trace-to-logs, Prometheus for the Service Graph view and two dashboards:",
        f"    {GRAFANA_DATASOURCES}, {GRAFANA_DASHBOARDS}, {GRAFANA_DASHBOARD_DIR}",
        f"    (how to install them: {GRAFANA_README}).",
    ]
    return "\n".join(lines)


def failure_text(result: DemoResult, timeout: float) -> str:
    where = f"{result.base_url}/api/traces/{result.showcase_trace_id}"
    if not result.searchable:
        view = result.view
        missing = sorted(set(result.services) - view.services)
        lines = [f"Trace {result.showcase_trace_id} did not come back whole within {timeout:.0f} s at {where}:"]
        lines.append(f"  {view.spans} spans from {', '.join(sorted(view.services)) or 'no service'}")
        if missing:
            lines.append(f"  no span yet from: {', '.join(missing)}")
        if view.orphans:
            lines.append(f"  {view.orphans} span(s) whose parent is missing (a hop that lost the context?)")
        if view.roots != 1:
            lines.append(f"  {view.roots} root spans (one expected: the storefront's)")
        return "\n".join(lines)
    if result.tempo_found is False:
        search = _get(result.base_url, "/api/search", q=result.traceql)
        return "\n".join(
            [
                f"Trace {result.showcase_trace_id} is complete at {where}, but the Tempo API's TraceQL search",
                f"did not return it within {result.tempo_wait_seconds:.0f} s:",
                f"  {search}",
            ]
        )
    shipped = sum(result.logs_shipped.values())
    return (
        f"Trace {result.showcase_trace_id} is complete, but {result.base_url}/api/v1/traces/"
        f"{result.showcase_trace_id}/logs returned no log line ({shipped} were shipped into {LOGS_INDEX}); "
        "is TRACESEARCH_LOGS_INDEX set to a pattern that misses it?"
    )
