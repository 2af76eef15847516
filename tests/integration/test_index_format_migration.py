"""Daily span indices made with the previous span templates stay readable beside new ones.

Yesterday's index is created with the span templates as they were before issue 14 (a copy kept in
``previous_span_templates/``, the files of commit 428e40d, rendered with the refresh interval of then:
1s) and its spans written as documents were then (every attribute key a term of its own, not key sets:
bench's ``bare_keys`` variant of the document builder's body); then the service starts, installs the
current templates (``best_compression``, the search-only fields kept in ``_source``, Elasticsearch's
refresh default) and stores today's spans. Every read Grafana makes must see both days: a trace with a
span on each day by id, Jaeger search with an exact tag, TraceQL with a numeric range and a tag,
whether a key is present (one whose value is an empty list too), full-text words and phrases, and tag
autocomplete (keys and values). Only the new index has the new format.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.es_variants import apply_to_body, variant
from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tracesearch.codecs.otlp_json import encode_traces_json
from tracesearch.model import Resource, Scope, Span, SpanKind, StatusCode
from tracesearch.settings import Settings
from tracesearch.storage.es.document import bulk_body
from tracesearch.storage.es.indices import span_index_for
from tracesearch.storage.es.key_sets import parse_carrier
from tracesearch.storage.es.templates import load_templates, render

PREVIOUS = Path(__file__).parent / "previous_span_templates"
PREVIOUS_REFRESH = "1s"  # TRACESEARCH_INDEX_REFRESH_INTERVAL's default until issue 14
SEARCH_ONLY = ["tags", "tags_num", "text"]
NS_PER_S = 1_000_000_000
SERVICE = "checkout"
DECLINED = "card declined by issuer"


def _midnight_ns() -> int:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(today.timestamp()) * NS_PER_S


MIDNIGHT_NS = _midnight_ns()
YESTERDAY_NOON_NS = MIDNIGHT_NS - 12 * 3600 * NS_PER_S


def _id(length: int) -> str:
    # A non-zero first digit: Tempo's search answers may drop leading zeros of trace ids.
    return "a" + uuid.uuid4().hex[: length - 1]


OLD, CROSS, NEW = _id(32), _id(32), _id(32)
CROSS_ROOT = _id(16)


def span(trace_id: str, start_ns: int, provider: str, status: int, *, parent: str = "", span_id: str = "") -> Span:
    failed = status >= 500
    return Span(
        trace_id=trace_id,
        span_id=span_id or _id(16),
        parent_span_id=parent,
        name="POST /pay",
        start_ns=start_ns,
        end_ns=start_ns + 20_000_000,
        resource=Resource({"service.name": SERVICE, "deploy.zone": "eu-1"}, SERVICE),
        scope=Scope("migration-test"),
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR if failed else StatusCode.OK,
        status_message=DECLINED if failed else "",
        attributes={"http.response.status_code": status, "payment.provider": provider, "payment.flags": []},
    )


YESTERDAY = [
    span(OLD, YESTERDAY_NOON_NS, "acme-old", 503),
    span(CROSS, MIDNIGHT_NS - NS_PER_S, "acme-cross", 200, span_id=CROSS_ROOT),
]


def today() -> list[Span]:
    recent = min(time.time_ns(), MIDNIGHT_NS + 24 * 3600 * NS_PER_S - 1) - 60 * NS_PER_S
    return [
        span(CROSS, MIDNIGHT_NS + NS_PER_S // 2, "acme-cross", 200, parent=CROSS_ROOT),
        span(NEW, max(recent, MIDNIGHT_NS + NS_PER_S), "acme-new", 503),
    ]


def install_previous_templates(es_url: str, prefix: str) -> None:
    """The previous span component templates, and the span index template that composes them."""
    settings = Settings(index_prefix=prefix, index_refresh_interval=PREVIOUS_REFRESH)
    for path in sorted(PREVIOUS.glob("*.component.json")):
        body = render(path.read_text(), settings)
        name = f"{prefix}-{path.name.removesuffix('.component.json')}"
        requests.put(f"{es_url}/_component_template/{name}", json=body, timeout=30).raise_for_status()
    index_templates = load_templates(settings)[1]
    body = index_templates[f"{prefix}-span"]
    requests.put(f"{es_url}/_index_template/{prefix}-span", json=body, timeout=30).raise_for_status()


def bulk_previous_format(es_url: str, prefix: str, spans: list[Span]) -> None:
    lines = apply_to_body(bulk_body(prefix, spans), variant("bare_keys"))
    headers = {"Content-Type": "application/x-ndjson"}
    answer = requests.post(f"{es_url}/_bulk?refresh=true", data=lines, headers=headers, timeout=30)
    answer.raise_for_status()
    assert not answer.json()["errors"], answer.text


@pytest.fixture(scope="module", params=["false", "true"], ids=["default", "sorted-by-trace"])
def both_days(
    es_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Service]:
    """Today's index made by the service as it is by default, and with TRACESEARCH_INDEX_SORT_BY_TRACE
    (sorted by trace id, traces fetched with one search each, yesterday's unsorted index too)."""
    prefix = f"it-migrate-{uuid.uuid4().hex[:8]}"
    install_previous_templates(es_url, prefix)
    bulk_previous_format(es_url, prefix, YESTERDAY)
    extra = {"TRACESEARCH_INDEX_SORT_BY_TRACE": request.param}
    service = start_service(es_url, prefix, tmp_path_factory.mktemp("migrate"), extra)
    try:
        answer = requests.post(f"{service.url}/v1/traces", json=encode_traces_json(today()), timeout=30)
        assert answer.status_code == 200, answer.text
        service.refresh()
        yield service
    finally:
        stop_service(service)
        drop_prefix(es_url, prefix)


def index_settings(service: Service, day_ns: int) -> dict[str, Any]:
    index = span_index_for(service.prefix, day_ns)
    answer = requests.get(f"{service.es_url}/{index}/_settings", timeout=30)
    answer.raise_for_status()
    return answer.json()[index]["settings"]["index"]  # type: ignore[no-any-return]


def source_excludes(service: Service, day_ns: int) -> list[str]:
    index = span_index_for(service.prefix, day_ns)
    answer = requests.get(f"{service.es_url}/{index}/_mapping", timeout=30)
    answer.raise_for_status()
    return answer.json()[index]["mappings"].get("_source", {}).get("excludes", [])  # type: ignore[no-any-return]


def stored_source(service: Service, trace_id: str) -> dict[str, Any]:
    answer = requests.post(
        f"{service.es_url}/{service.prefix}-span-*/_search",
        json={"query": {"term": {"trace.id": trace_id}}},
        timeout=30,
    )
    answer.raise_for_status()
    [hit] = answer.json()["hits"]["hits"]
    return hit["_source"]  # type: ignore[no-any-return]


def window_us() -> dict[str, int]:
    return {"start": (MIDNIGHT_NS - 24 * 3600 * NS_PER_S) // 1000, "end": time.time_ns() // 1000 + 60_000_000}


def window_s() -> dict[str, int]:
    return {key: value // 1_000_000 for key, value in window_us().items()}


def jaeger_search(service: Service, tags: dict[str, str]) -> set[str]:
    answer = service.get("/api/traces", service=SERVICE, tags=json.dumps(tags), **window_us())
    assert answer.status_code == 200, answer.text
    return {trace["traceID"] for trace in answer.json()["data"]}


def test_only_the_new_daily_index_has_the_new_format(both_days: Service, request: pytest.FixtureRequest) -> None:
    old, new = index_settings(both_days, YESTERDAY_NOON_NS), index_settings(both_days, MIDNIGHT_NS)
    assert "codec" not in old
    assert old["refresh_interval"] == PREVIOUS_REFRESH
    assert new["codec"] == "best_compression"
    assert "sort" not in old
    sorted_by_trace = request.node.callspec.params["both_days"] == "true"
    sort = {"field": "trace.id", "order": "asc"} if sorted_by_trace else None
    assert new.get("sort") == sort  # TRACESEARCH_INDEX_SORT_BY_TRACE, off by default
    assert "refresh_interval" not in new  # search-idle applies
    assert source_excludes(both_days, YESTERDAY_NOON_NS) == SEARCH_ONLY
    assert source_excludes(both_days, MIDNIGHT_NS) == []
    assert not set(SEARCH_ONLY) & set(stored_source(both_days, OLD))
    assert set(SEARCH_ONLY) <= set(stored_source(both_days, NEW))


def test_only_the_new_daily_index_keeps_keys_as_key_sets(both_days: Service) -> None:
    old = search_terms(both_days, OLD)
    assert "span.payment.provider" in old and not [t for t in old if t.startswith("key")]
    new = search_terms(both_days, NEW) + search_terms(both_days, CROSS)
    assert "span.payment.provider" not in new
    carried = dict(found for found in map(parse_carrier, new) if found is not None)
    [span_set] = [set_id for set_id, keys in carried.items() if "span.payment.provider" in keys]
    assert carried[span_set] == ["span.http.response.status_code", "span.payment.provider", "span.payment.flags"]
    assert f"keys:{span_set}" in search_terms(both_days, NEW)


def search_terms(service: Service, trace_id: str) -> list[str]:
    """The ``tags`` of a trace's span documents of its newest day (read as Elasticsearch stored them)."""
    answer = requests.post(
        f"{service.es_url}/{service.prefix}-span-*/_search",
        json={"query": {"term": {"trace.id": trace_id}}, "docvalue_fields": ["tags"], "_source": False},
        timeout=30,
    )
    answer.raise_for_status()
    hits = sorted(answer.json()["hits"]["hits"], key=lambda hit: hit["_index"])
    return [str(tag) for tag in hits[-1]["fields"]["tags"]]


def test_a_trace_with_a_span_on_each_day_is_read_whole(both_days: Service) -> None:
    answer = both_days.get(f"/api/traces/{CROSS}")
    assert answer.status_code == 200, answer.text
    [trace] = answer.json()["data"]
    assert {s["spanID"] for s in trace["spans"]} >= {CROSS_ROOT}
    assert len(trace["spans"]) == 2


def test_jaeger_search_with_an_exact_tag_finds_both_days(both_days: Service) -> None:
    assert jaeger_search(both_days, {"http.response.status_code": "503"}) == {OLD, NEW}
    assert jaeger_search(both_days, {"payment.provider": "acme-cross"}) == {CROSS}


def test_traceql_with_a_numeric_range_and_a_tag_finds_both_days(both_days: Service) -> None:
    q = '{ span.http.response.status_code >= 500 && resource.deploy.zone = "eu-1" }'
    answer = both_days.get("/api/search", q=q, limit=20, **window_s())
    assert answer.status_code == 200, answer.text
    found = {t["traceID"].rjust(32, "0") for t in answer.json()["traces"]}
    assert found == {OLD, NEW}


def test_whether_a_key_is_present_is_answered_on_both_days(both_days: Service) -> None:
    def traceql(q: str) -> set[str]:
        answer = both_days.get("/api/search", q=q, limit=20, **window_s())
        assert answer.status_code == 200, answer.text
        return {t["traceID"].rjust(32, "0") for t in answer.json()["traces"]}

    assert traceql("{ span.payment.provider != nil && span.http.response.status_code >= 500 }") == {OLD, NEW}
    assert traceql("{ span.payment.flags != nil }") == {OLD, CROSS, NEW}  # an empty list: nothing but its key
    assert traceql("{ .payment.flags != nil }") == {OLD, CROSS, NEW}
    assert traceql("{ span.payment.missing != nil }") == set()
    assert traceql('{ resource.deploy.zone != nil && span.payment.provider = "acme-new" }') == {NEW}


def test_full_text_words_and_phrases_find_both_days(both_days: Service) -> None:
    assert jaeger_search(both_days, {"_text": "declined"}) == {OLD, NEW}
    assert jaeger_search(both_days, {"_text": '"card declined"'}) == {OLD, NEW}
    assert jaeger_search(both_days, {"_text": '"declined card"'}) == set()  # positions, not just words


def test_tag_autocomplete_lists_keys_and_values_of_both_days(both_days: Service) -> None:
    tags = both_days.get("/api/v2/search/tags", **window_s())
    assert tags.status_code == 200, tags.text
    span_scope = next(s for s in tags.json()["scopes"] if s["name"] == "span")
    assert {"payment.provider", "payment.flags", "http.response.status_code"} <= set(span_scope["tags"])
    resource_scope = next(s for s in tags.json()["scopes"] if s["name"] == "resource")
    assert "deploy.zone" in resource_scope["tags"]
    values = both_days.get("/api/v2/search/tag/span.payment.provider/values", **window_s())
    assert values.status_code == 200, values.text
    assert {v["value"] for v in values.json()["tagValues"]} == {"acme-old", "acme-cross", "acme-new"}
