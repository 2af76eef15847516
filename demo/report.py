"""Tells the person running the demo where to look."""

from __future__ import annotations

import json
from shlex import quote

from demo.config import NOTE_SEARCH_WORD, SERVICES_BY_NAME, ingest_url
from demo.traffic import DemoResult


def _search(base_url: str, service: str, tags: dict[str, str]) -> str:
    # -G + --data-urlencode keeps the JSON readable and still encodes it correctly.
    tag_arg = "tags=" + json.dumps(tags, separators=(",", ":"))
    return (
        f"curl -s -G {quote(base_url + '/api/traces')} "
        f"--data-urlencode service={service} --data-urlencode {quote(tag_arg)}"
    )


def success_text(result: DemoResult) -> str:
    base, trace_id = result.base_url, result.showcase_trace_id
    lines = [
        f"Trace {trace_id} is searchable: {len(result.expected_span_ids)} spans from "
        f"{', '.join(result.services)} ({result.wait_seconds:.1f} s after the services stopped).",
        f"{len(result.trace_ids)} orders sent; {len(result.error_trace_ids)} failed in payments"
        + (f" (e.g. trace {result.error_trace_ids[0]})." if result.error_trace_ids else "."),
        "",
        "Look at it:",
        f"  curl -s {quote(f'{base}/api/traces/{trace_id}')}",
        f"  curl -s {quote(base + '/api/services')}",
        "  # failed orders: numeric comparison on the int http.response.status_code",
        "  " + _search(base, "frontend", {"http.response.status_code": ">=500"}),
        "  # free text over attribute values (a word from order.note)",
        "  " + _search(base, "frontend", {"_text": NOTE_SEARCH_WORD}),
        "",
        "Grafana: Connections > Data sources > Add data source > Jaeger",
        f"  URL:    {base}",
        "  Access: Server (proxy). Grafana's server makes the calls, so the URL must be",
        "          reachable from it (from a container: http://host.docker.internal:PORT).",
        "  Then Explore > Search, service 'frontend', or paste the trace id.",
        "  Tempo and Zipkin data sources come in a later release.",
    ]
    return "\n".join(lines)


def failure_text(result: DemoResult, timeout: float) -> str:
    where = f"{result.base_url}/api/traces/{result.showcase_trace_id}"
    if result.failed_exports:
        headline = f"Not all spans were accepted, so {where} cannot be complete."
    else:
        headline = f"Trace {result.showcase_trace_id} did not become searchable within {timeout:.0f} s at {where}."
    lines = [headline]
    for name, count in sorted(result.failed_exports.items()):
        spec = SERVICES_BY_NAME[name]
        lines.append(
            f"  {name}: {count} span(s) were not accepted by "
            f"{ingest_url(result.base_url, spec.ingest)} ({spec.ingest.value})"
        )
    for name, count in sorted(result.missing_spans.items()):
        spec = SERVICES_BY_NAME[name]
        lines.append(
            f"  {name}: {count} span(s) of the trace not returned (sent as {spec.ingest.value} to {spec.ingest.path})"
        )
    return "\n".join(lines)
