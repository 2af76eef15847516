"""The spans-per-trace cap (``QueryLimits.max_spans_per_trace``): the query service keeps a trace's
earliest spans and says it was cut, and every API returning traces tells its client so."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.storage.es_recorder import RecordingElasticsearch
from tracesearch.app import create_app
from tracesearch.codecs.tempopb import PARTIAL, TraceByIDResponse
from tracesearch.model import Resource, Scope, Span, SpanKind
from tracesearch.query.conditions import FieldEquals, TraceQuery
from tracesearch.query.limits import QueryLimits
from tracesearch.query.traceql import parse
from tracesearch.services.query import QueryService
from tracesearch.settings import Settings, SettingsError
from tracesearch.storage.memory import MemoryStore

NS = 1_000_000_000
CAP = 10
NOW_NS = time.time_ns()
BIG = "0af7651916cd43dd8448eb211c80319c"
SMALL = "00000000000000004bf92f3577b34da6"
EXACT = "1" * 32


def trace(trace_id: str, count: int) -> list[Span]:
    """``count`` spans one ms apart, written newest first; the first one is the root."""
    base = NOW_NS - 60 * NS
    resource = Resource({"service.name": "capped"}, "capped")
    spans = [
        Span(
            trace_id=trace_id,
            span_id=f"{i + 1:016x}",
            parent_span_id="" if i == 0 else f"{1:016x}",
            name=f"op {i}",
            start_ns=base + i * 1_000_000,
            end_ns=base + i * 1_000_000 + 500,
            resource=resource,
            scope=Scope(),
            kind=SpanKind.SERVER if i == 0 else SpanKind.INTERNAL,
        )
        for i in range(count)
    ]
    return spans[::-1]


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    memory = MemoryStore()
    assert memory.write(trace(BIG, 3 * CAP) + trace(SMALL, 3) + trace(EXACT, CAP)).rejected == []
    return memory


@pytest.fixture(scope="module")
def service(store: MemoryStore) -> QueryService:
    return QueryService(store, store.aggregates, limits=QueryLimits(max_spans_per_trace=CAP))


def window() -> TraceQuery:
    return TraceQuery(NOW_NS - 3600 * NS, NOW_NS, [FieldEquals("service", "capped")], 20)


# -- the service


def test_a_trace_over_the_cap_keeps_its_earliest_spans_and_says_it_was_cut(service: QueryService) -> None:
    cut = service.trace(BIG)
    assert cut.truncated and cut.cap == CAP
    assert [s.name for s in cut.spans] == [f"op {i}" for i in range(CAP)]
    assert f"trace {BIG} has more than {CAP} spans" in cut.message
    assert "TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE" in cut.message


def test_a_trace_at_or_under_the_cap_is_whole(service: QueryService) -> None:
    for trace_id, count in ((EXACT, CAP), (SMALL, 3)):
        whole = service.trace(trace_id)
        assert not whole.truncated and len(whole.spans) == count
    assert service.trace("2" * 32).spans == []


def test_lookups_and_searches_cut_each_trace(service: QueryService) -> None:
    assert [(len(t.spans), t.truncated) for t in service.traces([SMALL, BIG, "2" * 32])] == [(3, False), (CAP, True)]
    found = {t.spans[0].trace_id: (len(t.spans), t.truncated) for t in service.find_traces(window())}
    assert found == {BIG: (CAP, True), SMALL: (3, False), EXACT: (CAP, False)}
    zipkin = {t.spans[0].trace_id: t.truncated for t in service.zipkin_search(window())}
    assert zipkin == {BIG: True, SMALL: False, EXACT: False}
    assert service.zipkin_trace(BIG).truncated and not service.zipkin_trace(SMALL).truncated
    assert [t.truncated for t in service.zipkin_traces([BIG, SMALL])] == [True, False]


def test_traceql_judges_a_cut_trace_on_its_first_spans_and_lists_it(service: QueryService) -> None:
    result = service.search(parse('{ resource.service.name = "capped" }'), NOW_NS - 3600 * NS, NOW_NS, 20, 3)
    assert result.complete and result.truncated_traces == [BIG]
    (big,) = [t for t in result.traces if t.trace[0].trace_id == BIG]
    assert len(big.trace) == CAP
    late = parse('{ name = "op 25" }')  # only in the part of the big trace that was not read
    assert service.search(late, NOW_NS - 3600 * NS, NOW_NS, 20, 3).traces == []


def test_the_memory_store_reads_the_earliest_spans_only(store: MemoryStore) -> None:
    assert [s.name for s in store.get_trace(BIG, max_spans=4)] == ["op 0", "op 1", "op 2", "op 3"]
    assert len(store.get_trace(BIG)) == 3 * CAP
    assert {t: len(s) for t, s in store.traces([BIG, SMALL], 0, NOW_NS, max_spans=2).items()} == {BIG: 2, SMALL: 2}


# -- the setting


def test_the_setting_defaults_to_50000_and_refuses_0() -> None:
    assert Settings.from_env({}).query_max_spans_per_trace == 50_000
    assert QueryLimits.from_settings(Settings.from_env({})).max_spans_per_trace == 50_000
    limits = QueryLimits.from_settings(Settings.from_env({"TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE": "100"}))
    assert limits.max_spans_per_trace == 100
    with pytest.raises(SettingsError, match="TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE=0 must be at least 1"):
        Settings.from_env({"TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE": "0"})


# -- what the APIs answer


@pytest.fixture(scope="module")
def client(store: MemoryStore) -> FlaskClient:
    settings = Settings(install_templates=False, servicegraph_enabled=False, query_max_spans_per_trace=CAP)
    app = create_app(settings)
    components = app.extensions["tracesearch"]
    components.__dict__["_es"] = RecordingElasticsearch()
    components.__dict__["query"] = QueryService(store, store.aggregates, limits=QueryLimits.from_settings(settings))
    return app.test_client()


def get(client: FlaskClient, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    answer = client.get(path, query_string=params, headers=headers or {})
    assert answer.status_code == 200, answer.data
    return answer


def partial(answer: Any) -> str | None:
    return answer.headers.get("X-Tracesearch-Partial")  # type: ignore[no-any-return]


def test_jaeger_trace_says_it_was_cut_in_errors_warnings_and_the_header(client: FlaskClient) -> None:
    answer = get(client, f"/api/traces/{BIG}")
    body = answer.json
    (trace,) = body["data"]
    assert len(trace["spans"]) == CAP and partial(answer) == "spans per trace"
    assert [(e["code"], e["traceID"]) for e in body["errors"]] == [(206, BIG)]
    assert f"more than {CAP} spans" in body["errors"][0]["msg"]
    assert trace["warnings"] == [body["errors"][0]["msg"]] == trace["spans"][0]["warnings"]
    assert all(span["warnings"] is None for span in trace["spans"][1:])


def test_jaeger_whole_trace_has_no_marker(client: FlaskClient) -> None:
    answer = get(client, f"/api/traces/{SMALL}")
    assert answer.json["errors"] is None and answer.json["data"][0]["warnings"] is None
    assert partial(answer) is None


def test_jaeger_search_and_lookup_name_each_cut_trace(client: FlaskClient) -> None:
    start, end = (NOW_NS - 3600 * NS) // 1000, NOW_NS // 1000
    for answer in (
        get(client, "/api/traces", service="capped", start=start, end=end),
        get(client, "/api/traces", traceID=[BIG, SMALL]),
    ):
        body = answer.json
        assert [e["traceID"] for e in body["errors"]] == [BIG] and partial(answer) == "spans per trace"
        sizes = {t["traceID"]: len(t["spans"]) for t in body["data"]}
        assert sizes[BIG] == CAP and sizes[SMALL[16:]] == 3


def test_tempo_v2_protobuf_and_json_have_status_partial_and_a_message(client: FlaskClient) -> None:
    answer = get(client, f"/api/v2/traces/{BIG}", headers={"Accept": "application/protobuf"})
    message = TraceByIDResponse.FromString(answer.data)
    assert message.status == PARTIAL and f"more than {CAP} spans" in message.message
    assert sum(len(s.spans) for r in message.trace.resource_spans for s in r.scope_spans) == CAP
    assert partial(answer) == "spans per trace"
    body = get(client, f"/api/v2/traces/{BIG}").json
    assert body["status"] == "PARTIAL" and body["message"] == message.message
    whole = get(client, f"/api/v2/traces/{SMALL}")
    assert "status" not in whole.json and partial(whole) is None
    assert (
        TraceByIDResponse.FromString(
            get(client, f"/api/v2/traces/{SMALL}", headers={"Accept": "application/protobuf"}).data
        ).status
        == 0
    )


def test_tempo_v1_protobuf_and_search_have_the_header(client: FlaskClient) -> None:
    protobuf = {"Accept": "application/protobuf"}
    assert partial(get(client, f"/api/traces/{BIG}", headers=protobuf)) == "spans per trace"
    assert partial(get(client, f"/api/traces/{SMALL}", headers=protobuf)) is None
    start, end = (NOW_NS - 3600 * NS) // NS, NOW_NS // NS + 1
    search = get(client, "/api/search", q='{ resource.service.name = "capped" }', start=start, end=end)
    assert partial(search) == "spans per trace"
    assert partial(get(client, "/api/search", q='{ name = "op 1" }', start=start, end=end)) == "spans per trace"
    assert partial(get(client, "/api/search", q='{ name = "nothing" }', start=start, end=end)) is None


def test_zipkin_says_it_in_the_header_only(client: FlaskClient) -> None:
    cut = get(client, f"/api/v2/trace/{BIG}")
    assert len(cut.json) == CAP and partial(cut) == "spans per trace"
    assert partial(get(client, f"/api/v2/trace/{SMALL}")) is None
    many = get(client, "/api/v2/traceMany", traceIds=f"{BIG},{SMALL}")
    assert [len(t) for t in many.json] == [CAP, 3] and partial(many) == "spans per trace"
    assert partial(get(client, "/api/v2/traceMany", traceIds=SMALL)) is None
    found = get(client, "/api/v2/traces", serviceName="capped", endTs=NOW_NS // 10**6, lookback=3_600_000)
    assert sorted(len(t) for t in found.json) == [3, CAP, CAP] and partial(found) == "spans per trace"


def test_the_openapi_document_describes_the_header(client: FlaskClient) -> None:
    paths = get(client, "/openapi.json").json["paths"]
    for path in ("/api/traces/{trace_id}", "/api/traces", "/api/v2/traces/{trace_id}", "/api/search"):
        assert "X-Tracesearch-Partial" in paths[path]["get"]["responses"]["200"]["headers"], path
    for path in ("/api/v2/trace/{trace_id}", "/api/v2/traceMany", "/api/v2/traces"):
        headers = paths[path]["get"]["responses"]["200"]["headers"]
        assert "spans per trace" in headers["X-Tracesearch-Partial"]["description"], path
