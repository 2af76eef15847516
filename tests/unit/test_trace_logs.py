"""``GET /api/v1/traces/{trace_id}/logs`` through the real app, over the in-memory stores: the window
(around the stored trace, asked for, or the lookback), ids as every trace endpoint takes them, 400s
that say what was wrong, limit and truncation, and 503 with Retry-After while storage is away."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.codecs.factories import make_span
from tracesearch.app import create_app
from tracesearch.services.trace_logs import TraceLogsService
from tracesearch.settings import Settings
from tracesearch.storage.contracts import LogLines, StorageUnavailable
from tracesearch.storage.memory import MemoryLogs, MemoryStore

NS_PER_S = 1_000_000_000
NOW_NS = 1_795_176_000 * NS_PER_S  # 2026-11-20 12:00:00 UTC
TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER = "4bf92f3577b34da6a3ce929d0e0e4736"
SHORT = "00000000000000004bf92f3577b34da6"
MARGIN_S = 300.0
LOOKBACK_S = 7 * 86400.0
SPAN_START_NS = NOW_NS - 3600 * NS_PER_S  # the stored trace: an hour ago, for two seconds
SPAN_END_NS = SPAN_START_NS + 2 * NS_PER_S
PATH = f"/api/v1/traces/{TRACE}/logs"


def iso(ns: int) -> str:
    """RFC 3339 with nanoseconds, as ECS shippers write @timestamp."""
    seconds, fraction = divmod(ns, NS_PER_S)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def line(trace_id: str, at_ns: int, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "@timestamp": iso(at_ns),
        "log": {"level": "info"},
        "message": message,
        "trace": {"id": trace_id},
        "span": {"id": "b7ad6b7169203331"},
        "service": {"name": "checkout"},
        **extra,
    }


class FailingLogs(MemoryLogs):
    def trace_logs(self, trace_id: str, start_ns: int, end_ns: int, limit: int) -> LogLines:
        raise StorageUnavailable("Elasticsearch unreachable: connection refused")


def client_over(spans: MemoryStore, logs: MemoryLogs) -> FlaskClient:
    settings = Settings(install_templates=False, servicegraph_enabled=False, retry_after_s=7)
    app = create_app(settings)
    service = TraceLogsService(spans, logs, MARGIN_S, LOOKBACK_S, clock=lambda: NOW_NS)
    app.extensions["tracesearch"].__dict__["trace_logs"] = service
    return app.test_client()


@pytest.fixture
def logs() -> MemoryLogs:
    logs = MemoryLogs("logs-*", "trace.id")
    inside = SPAN_START_NS + NS_PER_S
    logs.add("logs-app", line(TRACE, inside + 2_000_000, "third"))
    logs.add("logs-app", line(TRACE, SPAN_START_NS - 240 * NS_PER_S, "first, inside the margin"))
    logs.add("logs-app", line(TRACE, inside, "second"))
    logs.add("logs-app", line(TRACE, SPAN_START_NS - 400 * NS_PER_S, "before the margin"))
    logs.add("logs-app", line(TRACE, SPAN_END_NS + 400 * NS_PER_S, "after the margin"))
    logs.add("logs-app", line(OTHER, inside, "another trace"))
    logs.add("audit-app", line(TRACE, inside, "another index"))
    return logs


@pytest.fixture
def stored() -> MemoryStore:
    store = MemoryStore(clock=lambda: NOW_NS)
    store.write(
        [
            make_span(trace_id=TRACE, span_id="a" * 16, start_ns=SPAN_START_NS, end_ns=SPAN_START_NS + NS_PER_S),
            make_span(trace_id=TRACE, span_id="b" * 16, start_ns=SPAN_START_NS + 10, end_ns=SPAN_END_NS),
        ]
    )
    return store


@pytest.fixture
def client(stored: MemoryStore, logs: MemoryLogs) -> FlaskClient:
    return client_over(stored, logs)


def get(client: FlaskClient, path: str = PATH, **params: Any) -> tuple[int, dict[str, Any]]:
    answer = client.get(path, query_string=params)
    assert answer.mimetype == "application/json"
    body: dict[str, Any] = answer.json  # type: ignore[assignment]
    return answer.status_code, body


def messages(body: dict[str, Any]) -> list[str]:
    return [entry["message"] for entry in body["logs"]]


def test_lines_of_the_stored_trace_within_its_margin_oldest_first(client: FlaskClient) -> None:
    status, body = get(client)
    assert status == 200
    assert messages(body) == ["first, inside the margin", "second", "third"]
    assert body["traceId"] == TRACE and body["index"] == "logs-*" and body["field"] == "trace.id"
    assert body["window"] == "trace" and body["truncated"] is False
    assert body["start"] == iso(SPAN_START_NS - int(MARGIN_S) * NS_PER_S)[:23] + "Z"
    assert body["end"] == iso(SPAN_END_NS + int(MARGIN_S) * NS_PER_S)[:23] + "Z"


def test_each_line_is_its_ecs_document_with_index_and_id(client: FlaskClient) -> None:
    _, body = get(client)
    first = body["logs"][0]
    assert first["log"] == {"level": "info"} and first["span"] == {"id": "b7ad6b7169203331"}
    assert first["service"] == {"name": "checkout"} and first["trace"] == {"id": TRACE}
    assert first["@timestamp"].endswith("Z") and first["_index"] == "logs-app" and first["_id"]


@pytest.mark.parametrize("given", [TRACE.upper(), "0AF7651916cd43DD8448eb211c80319c", f" {TRACE} "])
def test_the_id_is_taken_as_every_trace_endpoint_takes_it(client: FlaskClient, given: str) -> None:
    status, body = get(client, f"/api/v1/traces/{given}/logs")
    assert status == 200 and body["traceId"] == TRACE and len(body["logs"]) == 3


def test_a_short_id_is_padded_and_lines_logged_with_16_digits_found() -> None:
    logs = MemoryLogs()
    logs.add("logs-a", line(SHORT, NOW_NS - NS_PER_S, "logged by a 64-bit tracer"))
    logs.add("logs-a", line(SHORT[16:], NOW_NS - 2 * NS_PER_S, "logged as 16 digits"))
    status, body = get(client_over(MemoryStore(), logs), f"/api/v1/traces/{SHORT[16:].upper()}/logs")
    assert status == 200 and body["traceId"] == SHORT
    assert messages(body) == ["logged as 16 digits", "logged by a 64-bit tracer"]


@pytest.mark.parametrize(
    ("path", "params", "field", "says"),
    [
        ("/api/v1/traces/xyz/logs", {}, "trace_id", "not a trace id"),
        (f"/api/v1/traces/{'a' * 33}/logs", {}, "trace_id", "not a trace id"),
        (PATH, {"limit": "0"}, "limit", "positive integer"),
        (PATH, {"limit": "ten"}, "limit", "positive integer"),
        (PATH, {"start": "yesterday"}, "start", "not unix seconds"),
        (PATH, {"start": "200", "end": "100"}, "end", "before start"),
    ],
)
def test_bad_parameters_are_400_saying_what(
    client: FlaskClient, path: str, params: dict[str, str], field: str, says: str
) -> None:
    status, body = get(client, path, **params)
    assert status == 400
    assert body["error"]["code"] == 400 and body["error"]["field"] == field
    assert says in body["error"]["message"]


def test_no_matching_index_is_an_empty_answer(stored: MemoryStore, logs: MemoryLogs) -> None:
    status, body = get(client_over(stored, MemoryLogs("nothing-here-*")))
    assert status == 200 and body["logs"] == [] and body["truncated"] is False


def test_limit_keeps_the_oldest_and_says_truncated(client: FlaskClient) -> None:
    status, body = get(client, limit=2)
    assert status == 200 and messages(body) == ["first, inside the margin", "second"] and body["truncated"] is True
    _, exact = get(client, limit=3)
    assert exact["truncated"] is False


def test_limit_over_the_maximum_is_cut_to_it(client: FlaskClient) -> None:
    status, body = get(client, limit=10**9)
    assert status == 200 and len(body["logs"]) == 3


def test_a_trace_not_stored_is_searched_in_the_window_asked_for(logs: MemoryLogs) -> None:
    client = client_over(MemoryStore(), logs)
    start_s = (SPAN_START_NS - 500 * NS_PER_S) // NS_PER_S
    status, body = get(client, start=start_s, end=(SPAN_END_NS + 500 * NS_PER_S) // NS_PER_S)
    assert status == 200 and body["window"] == "request"
    assert messages(body) == ["before the margin", "first, inside the margin", "second", "third", "after the margin"]
    _, narrow = get(client, start=(SPAN_START_NS + NS_PER_S) // NS_PER_S, end=SPAN_END_NS // NS_PER_S)
    assert messages(narrow) == ["second", "third"]


def test_a_trace_not_stored_without_a_window_is_searched_over_the_lookback(logs: MemoryLogs) -> None:
    logs.add("logs-app", line(TRACE, NOW_NS - int(LOOKBACK_S + 60) * NS_PER_S, "older than the lookback"))
    status, body = get(client_over(MemoryStore(), logs))
    assert status == 200 and body["window"] == "lookback"
    assert len(body["logs"]) == 5 and "older than the lookback" not in messages(body)
    assert body["end"] == iso(NOW_NS)[:23] + "Z"


def test_only_end_given_searches_the_lookback_before_it(logs: MemoryLogs) -> None:
    status, body = get(client_over(MemoryStore(), logs), end=SPAN_START_NS // NS_PER_S)
    assert status == 200 and body["window"] == "request"
    assert messages(body) == ["before the margin", "first, inside the margin"]


def test_storage_away_is_503_with_retry_after(stored: MemoryStore) -> None:
    answer = client_over(stored, FailingLogs()).get(PATH)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "7"
    assert "unreachable" in answer.json["error"]["message"]  # type: ignore[index]


def test_memory_logs_read_dotted_and_nested_fields_and_epoch_millis() -> None:
    logs = MemoryLogs("logs-a,other-*", "trace.id")
    logs.add("logs-a", {"@timestamp": NOW_NS // 1_000_000, "trace.id": TRACE, "message": "flat"})
    logs.add("other-1", {"@timestamp": "2026-11-20T11:59:59.5+00:00", "trace": {"id": TRACE}, "message": "nested"})
    logs.add("logs-ab", {"@timestamp": NOW_NS // 1_000_000, "trace.id": TRACE, "message": "not in the pattern"})
    found = logs.trace_logs(TRACE, NOW_NS - 10 * NS_PER_S, NOW_NS, 10)
    assert [entry["message"] for entry in found.lines] == ["nested", "flat"]


def test_a_tenant_reads_the_logs_of_its_own_stored_traces_only(stored: MemoryStore, logs: MemoryLogs) -> None:
    """A tenant's service answers for another tenant's trace id (not in its own spans) as for a trace
    without log lines, although the shared logs indices hold lines of that id."""
    settings = Settings(install_templates=False, servicegraph_enabled=False, tenant_header=True)
    app = create_app(settings)
    root = app.extensions["tracesearch"]
    for tenant, spans in (("owner", stored), ("guesser", MemoryStore(clock=lambda: NOW_NS))):
        service = TraceLogsService(spans, logs, MARGIN_S, LOOKBACK_S, clock=lambda: NOW_NS, stored_only=True)
        root.for_tenant(tenant).__dict__["trace_logs"] = service
    client = app.test_client()

    def as_tenant(tenant: str, path: str = PATH, **params: str) -> dict[str, Any]:
        answer = client.get(path, headers={"X-Scope-OrgID": tenant}, query_string=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json  # type: ignore[assignment]
        return body

    assert messages(as_tenant("owner")) == ["first, inside the margin", "second", "third"]
    for params in ({}, {"start": str(SPAN_START_NS // NS_PER_S), "end": str(SPAN_END_NS // NS_PER_S)}):
        guessed = as_tenant("guesser", **params)
        unknown = as_tenant("guesser", f"/api/v1/traces/{'1' * 32}/logs", **params)
        assert guessed["logs"] == [] and guessed["truncated"] is False
        assert {**guessed, "traceId": ""} == {**unknown, "traceId": ""}
