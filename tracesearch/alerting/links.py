"""The trace-search link of a notification: Grafana Explore on the Tempo data source when a Grafana URL
is configured, otherwise tracesearch's own Tempo search API, both with the alert's TraceQL and window."""

from __future__ import annotations

import json
from urllib.parse import urlencode

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
LIMIT = 20


def grafana_explore_url(grafana_url: str, tempo_uid: str, traceql: str, start_ns: int, end_ns: int) -> str:
    """Explore with one pane (Grafana 10+'s ``panes`` format: the pane's data source uid, its queries in
    the Tempo data source's model, and an absolute range in epoch milliseconds)."""
    pane = {
        "datasource": tempo_uid,
        "queries": [
            {
                "refId": "A",
                "datasource": {"type": "tempo", "uid": tempo_uid},
                "queryType": "traceql",
                "query": traceql,
                "limit": LIMIT,
                "tableType": "traces",
            }
        ],
        "range": {"from": str(start_ns // NS_PER_MS), "to": str(end_ns // NS_PER_MS)},
    }
    panes = json.dumps({"alert": pane}, separators=(",", ":"))
    return f"{grafana_url.rstrip('/')}/explore?{urlencode({'schemaVersion': 1, 'panes': panes, 'orgId': 1})}"


def native_search_url(base_url: str, traceql: str, start_ns: int, end_ns: int) -> str:
    """tracesearch's Tempo search (``/api/search``, seconds as Tempo takes them)."""
    query = {"q": traceql, "start": start_ns // NS_PER_S, "end": -(-end_ns // NS_PER_S), "limit": LIMIT}
    return f"{base_url.rstrip('/')}/api/search?{urlencode(query)}"


def search_url(traceql: str, start_ns: int, end_ns: int, *, grafana_url: str, tempo_uid: str, base_url: str) -> str:
    if grafana_url:
        return grafana_explore_url(grafana_url, tempo_uid, traceql, start_ns, end_ns)
    return native_search_url(base_url, traceql, start_ns, end_ns)
