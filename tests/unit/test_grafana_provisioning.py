"""The Grafana provisioning files and dashboards in ``grafana/``, checked against Grafana's documented formats.

Grafana itself cannot run here, so these tests hold the files to what Grafana reads: provisioning keys
(grafana-contracts.md section 7), built-in panel types, the query models of the Tempo data source
(grafana-tempo-datasource ``src/dataquery.ts``: ``queryType``, ``query``, ``tableType``, ``metricsQueryType``;
TraceQL metrics are recognised by ``| rate(`` and friends, trace ids by being hex only) and of the Jaeger
one (``pkg/jaeger/querydata.go``: ``""``, ``search``, ``dependencyGraph``), and every TraceQL query of the
dashboards must parse with our own TraceQL parser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracesearch.query.traceql import TraceQLError, parse
from tracesearch.settings import VARIABLES_BY_FIELD, Settings

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "tracesearch.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "tracesearch.yaml"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
README = GRAFANA / "README.md"
# Where grafana/README.md tells to copy (or mount) the repository's dashboards folder.
INSTALLED_AT = {"/var/lib/grafana/dashboards/tracesearch": GRAFANA / "dashboards"}

DATASOURCE_KEYS = {
    "name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth", "basicAuthUser",
    "withCredentials", "isDefault", "jsonData", "secureJsonData", "version", "editable",
}  # fmt: skip
PROVIDER_KEYS = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds", "allowUiUpdates",
    "options",
}  # fmt: skip
# TRACESEARCH_LOGS_TRACE_ID_FIELD's default: the field the logs endpoint and the provisioning both use.
LOGS_TRACE_ID_FIELD = Settings().logs_trace_id_field
LOGS_TIME_MARGIN = VARIABLES_BY_FIELD["logs_time_margin_s"].default
TRACE_TYPES = {"tempo", "jaeger", "zipkin"}
LOG_TYPES = {"elasticsearch"}
ALLOWED_TYPES = TRACE_TYPES | LOG_TYPES | {"prometheus"}
ENV_VARS = {"TRACESEARCH_URL", "LOGS_ES_URL", "LOGS_ES_INDEX", "PROMETHEUS_URL", "ALERTS_ES_URL", "ALERTS_INDEX"}
BUILTIN_PANELS = {"timeseries", "table", "nodeGraph", "traces", "stat", "heatmap", "row", "text"}
QUERY_TYPES = {
    "tempo": {"traceql", "traceqlSearch", "serviceMap", "traceId"},
    "jaeger": {"", "search", "dependencyGraph"},
}
# grafana-tempo-datasource pkg/tempo/traceql_query.go isMetricsQuery.
METRICS_QUERY = re.compile(
    r"\|\s*(rate|count_over_time|avg_over_time|max_over_time|min_over_time|sum_over_time|quantile_over_time"
    r"|histogram_over_time|compare)\("
)
# Values a user could pick, to check the queries Grafana would send once it has replaced the variables.
SAMPLE_VALUES = {
    "service": "frontend",
    # Grafana's regex format escapes every regex character, "/" included.
    "operation:regex": r"GET \/api\/items\/\{id\}",
    "query": '{resource.service.name="frontend" && duration > 100ms}',
    "traceId": "0af7651916cd43dd8448eb211c80319c",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def load_yaml(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def datasources() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = load_yaml(DATASOURCES)["datasources"]
    return items


def by_uid() -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in datasources()}


def of_type(kind: str) -> list[dict[str, Any]]:
    return [d for d in datasources() if d["type"] == kind]


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside rows included."""
    found = []
    for item in dashboard["panels"]:
        found.append(item)
        found.extend(item.get("panels", []))
    return found


def targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (path.name, panel, target)
        for path in DASHBOARDS
        for panel in panels(json.loads(path.read_text()))
        for target in panel.get("targets", [])
    ]


def interpolate(text: str) -> str:
    """What Grafana sends after replacing the dashboard variables with sample values."""

    def value(match: re.Match[str]) -> str:
        name, fmt, bare = match.groups()
        key = f"{name}:{fmt}" if fmt else (name or bare)
        assert key in SAMPLE_VALUES, f"no sample value for ${key} in {text!r}"
        return SAMPLE_VALUES[key]

    return VARIABLE.sub(value, text)


def traceql_targets() -> list[tuple[str, str, str]]:
    return [
        (name, panel["title"], target["query"])
        for name, panel, target in targets()
        if target["datasource"]["type"] == "tempo" and target.get("queryType") == "traceql"
    ]


# ------------------------------------------------------------------------------------- data sources


def test_datasource_file_has_the_documented_shape() -> None:
    document = load_yaml(DATASOURCES)
    assert document["apiVersion"] == 1
    assert set(document) <= {"apiVersion", "datasources", "deleteDatasources", "prune"}
    for source in document["datasources"]:
        assert set(source) <= DATASOURCE_KEYS, source["name"]
        assert {"name", "type", "uid", "access", "url"} <= set(source), source
        assert source["type"] in ALLOWED_TYPES
        assert source["access"] == "proxy", "Grafana must reach tracesearch server-side (no CORS)"
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", source["uid"]), source["uid"]
    uids = [s["uid"] for s in document["datasources"]]
    names = [s["name"] for s in document["datasources"]]
    assert len(set(uids)) == len(uids) and len(set(names)) == len(names)
    assert {s["type"] for s in document["datasources"]} == ALLOWED_TYPES
    assert sum(bool(s.get("isDefault")) for s in document["datasources"]) <= 1


def test_trace_datasources_point_at_tracesearch_through_the_environment() -> None:
    for source in datasources():
        if source["type"] in TRACE_TYPES:
            assert source["url"] == "${TRACESEARCH_URL}"


def test_only_documented_environment_variables_and_escaped_grafana_variables() -> None:
    """Grafana expands ``$VAR``/``${VAR}`` in provisioning files; its own ``${__trace.traceId}`` must be
    written ``$${...}`` or it is replaced by an (empty) environment variable."""
    text = DATASOURCES.read_text()
    for match in re.finditer(r"(?<!\$)\$\{?([A-Za-z_][\w.]*)\}?", text):
        assert match.group(1) in ENV_VARS, f"{match.group(0)}: write $$ for a literal $"
    for name in ENV_VARS:
        assert f"${{{name}}}" in text and name in README.read_text(), name


def test_tempo_has_streaming_off_node_graph_and_a_prometheus_service_map() -> None:
    [tempo] = of_type("tempo")
    json_data = tempo["jsonData"]
    assert json_data["streamingEnabled"] == {"search": False, "metrics": False}
    assert json_data["nodeGraph"] == {"enabled": True}
    assert by_uid()[json_data["serviceMap"]["datasourceUid"]]["type"] == "prometheus"


def test_jaeger_has_the_node_graph() -> None:
    [jaeger] = of_type("jaeger")
    assert jaeger["jsonData"]["nodeGraph"] == {"enabled": True}


@pytest.mark.parametrize("kind", sorted(TRACE_TYPES))
def test_traces_link_to_logs_by_trace_id(kind: str) -> None:
    [source] = of_type(kind)
    logs = source["jsonData"]["tracesToLogsV2"]
    assert by_uid()[logs["datasourceUid"]]["type"] == "elasticsearch"
    assert logs["filterByTraceID"] is True
    assert logs["customQuery"] is True
    # The same field GET /api/v1/traces/{id}/logs searches by default: Grafana's link and ours agree.
    assert logs["query"] == f'{LOGS_TRACE_ID_FIELD}:"$${{__trace.traceId}}"'
    assert logs["query"] == 'trace.id:"$${__trace.traceId}"'
    for shift in ("spanStartTimeShift", "spanEndTimeShift"):
        assert re.fullmatch(r"-?\d+(ms|s|m|h)", logs[shift]), shift
    # Grafana's window around a span is the endpoint's default margin around a trace.
    assert (logs["spanStartTimeShift"], logs["spanEndTimeShift"]) == (f"-{LOGS_TIME_MARGIN}", LOGS_TIME_MARGIN)


def test_logs_datasource_reads_ecs_logs_and_links_back_to_the_trace() -> None:
    logs = by_uid()["tracesearch-logs"]
    json_data = logs["jsonData"]
    assert json_data["index"] == "${LOGS_ES_INDEX}"
    assert json_data["timeField"] == "@timestamp"
    assert json_data["logMessageField"] and json_data["logLevelField"]
    [link] = json_data["dataLinks"]
    assert link["field"] == LOGS_TRACE_ID_FIELD and link["url"] == "$${__value.raw}"
    assert by_uid()[link["datasourceUid"]]["type"] == "tempo"


def test_alert_events_are_annotations_on_both_dashboards() -> None:
    alerts = by_uid()["tracesearch-alerts"]
    assert alerts["type"] == "elasticsearch" and alerts["url"] == "${ALERTS_ES_URL}"
    assert alerts["jsonData"] == {
        "index": "${ALERTS_INDEX}",
        "timeField": "@timestamp",
        "maxConcurrentShardRequests": 5,
    }
    for path in DASHBOARDS:
        [annotation] = json.loads(path.read_text())["annotations"]["list"]
        assert annotation["datasource"] == {"type": "elasticsearch", "uid": "tracesearch-alerts"}
        # The fields tracesearch.storage.es.alert_store writes.
        assert (annotation["timeField"], annotation["textField"], annotation["tagsField"]) == (
            "@timestamp",
            "text",
            "tags",
        )
        assert annotation["query"] == annotation["target"]["query"] == "tags:(firing OR resolved)"


# ------------------------------------------------------------------------------------- dashboard provider


def test_dashboard_provider_loads_the_repository_dashboards() -> None:
    document = load_yaml(PROVIDERS)
    assert document["apiVersion"] == 1
    [provider] = document["providers"]
    assert set(provider) <= PROVIDER_KEYS
    assert provider["type"] == "file" and provider["name"]
    path = provider["options"]["path"]
    assert path in INSTALLED_AT, f"{path} is not where grafana/README.md installs the dashboards"
    folder = INSTALLED_AT[path]
    assert folder.is_dir() and sorted(folder.glob("*.json")) == DASHBOARDS
    assert path in README.read_text()


# ------------------------------------------------------------------------------------- dashboards


def test_there_are_the_two_dashboards() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {"Service overview", "Trace search"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_json_with_identity(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["title"] and isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None  # an id would clash with the database's
    ids = [p["id"] for p in panels(dashboard)]
    assert len(set(ids)) == len(ids)
    for panel in panels(dashboard):
        assert panel["type"] in BUILTIN_PANELS, f"{panel['title']}: {panel['type']} needs a plugin"
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


def test_every_target_uses_a_provisioned_datasource_and_a_query_type_it_has() -> None:
    sources = by_uid()
    assert targets()
    for name, panel, target in targets():
        where = f"{name} / {panel['title']}"
        source = sources.get(target["datasource"]["uid"])
        assert source is not None, f"{where}: unknown data source uid {target['datasource']['uid']}"
        assert target["datasource"]["type"] == source["type"], where
        assert panel["datasource"] == target["datasource"], where
        assert target.get("queryType", "") in QUERY_TYPES[source["type"]], where


def test_each_panel_shows_what_its_query_returns() -> None:
    """Grafana's Tempo data source runs only the first TraceQL target of a panel, and sends a query
    that is hex only as a trace id, one with ``| rate(`` & co. to the metrics API, the rest to search."""
    for name, panel, target in targets():
        where = f"{name} / {panel['title']}"
        assert len(panel["targets"]) == 1, where
        query_type = target.get("queryType", "")
        if panel["type"] == "nodeGraph":
            assert query_type in {"serviceMap", "dependencyGraph"}, where
        elif panel["type"] == "traces":
            assert re.fullmatch(r"[0-9a-fA-F]+", interpolate(target["query"])), where
        elif panel["type"] in {"timeseries", "stat", "heatmap"}:
            assert METRICS_QUERY.search(target["query"]), where
            assert target["metricsQueryType"] == ("instant" if panel["type"] == "stat" else "range"), where
            assert panel["type"] != "heatmap" or "histogram_over_time(" in target["query"], where
        elif panel["type"] == "table":
            assert query_type == "traceql" and not METRICS_QUERY.search(interpolate(target["query"])), where
            assert target["tableType"] in {"traces", "spans"} and target["limit"] > 0 and target["spss"] > 0


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_variables_are_defined_and_fed_by_provisioned_datasources(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] in by_uid()
            # grafana-tempo-datasource VariableQueryEditor: type 1 = label values of the tag in "label".
            assert variable["datasource"]["type"] == "tempo" and variable["query"]["type"] == 1
            assert variable["query"]["label"]
    used = {m[0] or m[2] for m in VARIABLE.findall(json.dumps(dashboard["panels"]))}
    used -= {"__value", "__url_time_range", "__all"}
    assert used <= set(variables), used - set(variables)


def test_service_overview_covers_rate_errors_latency_map_and_traces() -> None:
    [dashboard] = [json.loads(p.read_text()) for p in DASHBOARDS if "service-overview" in p.name]
    queries = " ".join(t["query"] for p in panels(dashboard) for t in p.get("targets", []) if "query" in t)
    assert '{resource.service.name="$service"} | rate()' in queries
    assert "status=error} | rate()" in queries and "rate() by (name)" in queries
    assert "quantile_over_time(duration, .5, .95, .99) by (name)" in queries
    assert "duration > 500ms}" in queries and "status=error}" in queries
    kinds = {(p["type"], t.get("queryType", "")) for p in panels(dashboard) for t in p.get("targets", [])}
    assert ("nodeGraph", "dependencyGraph") in kinds and ("table", "traceql") in kinds
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"service", "operation"}


# ------------------------------------------------------------------------------------- TraceQL


@pytest.mark.parametrize(("dashboard", "title", "query"), traceql_targets())
def test_traceql_queries_parse_with_our_parser(dashboard: str, title: str, query: str) -> None:
    text = interpolate(query)
    if re.fullmatch(r"[0-9a-fA-F]+", text):
        return  # a trace id, not TraceQL (Grafana's own test)
    parse(text)


def test_our_parser_refuses_what_grafana_would_send_broken() -> None:
    """The check above can fail: a query with an unbalanced brace does not parse."""
    with pytest.raises(TraceQLError):
        parse('{resource.service.name="frontend" | rate()')
