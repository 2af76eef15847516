"""The evaluator against the hand-derived conformance tables, plus what by/select/aggregates return."""

import pytest

from tests.traceql_fixture import (
    BATCH,
    CART,
    CONFORMANCE,
    CONFORMANCE_SPANS,
    FANOUT,
    FEATURE,
    SHOP,
    USERS,
    sid,
    traces,
)
from tracesearch.query.traceql import evaluate, matching_spans, parse

TRACES = traces()
BY_ID = {trace[0].trace_id: trace for trace in TRACES}


def matching_traces(query: str) -> set[str]:
    parsed = parse(query)
    return {trace[0].trace_id for trace in TRACES if evaluate(parsed, trace)}


def test_the_table_is_big_and_covers_the_fixture() -> None:
    assert len(CONFORMANCE) >= 70
    assert len({query for query, _ in CONFORMANCE}) == len(CONFORMANCE)
    assert len(TRACES) == 16 and len(BY_ID) == 16


@pytest.mark.parametrize(("query", "expected"), CONFORMANCE, ids=[q for q, _ in CONFORMANCE])
def test_conformance(query: str, expected: frozenset[str]) -> None:
    assert matching_traces(query) == set(expected)


@pytest.mark.parametrize(("query", "expected"), CONFORMANCE_SPANS, ids=[q for q, _ in CONFORMANCE_SPANS])
def test_conformance_spans(query: str, expected: dict[str, frozenset[str]]) -> None:
    parsed = parse(query)
    found = {}
    for trace in TRACES:
        spans = {span.span_id for spanset in evaluate(parsed, trace) for span in spanset.spans}
        if spans:
            found[trace[0].trace_id] = spans
    assert found == {trace_id: set(ids) for trace_id, ids in expected.items()}


def test_by_splits_into_one_spanset_per_value_and_records_it() -> None:
    result = evaluate(parse("{ status = error } | by(resource.service.name)"), BY_ID[BATCH])
    groups = {spanset.attributes["by(resource.service.name)"]: spanset for spanset in result}
    assert set(groups) == {"batch", "notifier"}
    assert groups["batch"].matched == 3
    assert [span.span_id for span in groups["notifier"].spans] == [sid(BATCH, 4)]


def test_missing_by_value_is_a_group_of_its_own() -> None:
    result = evaluate(parse("{ } | by(span.shard)"), BY_ID[FANOUT])
    values = sorted((s.attributes["by(span.shard)"] is None, s.matched) for s in result)
    assert values == [(False, 1), (False, 1), (False, 1), (False, 1), (True, 1)]


def test_aggregate_values_are_returned_with_the_spanset() -> None:
    [spanset] = evaluate(parse('{ name =~ "shard.*" } | avg(duration) > 20ms | count() = 4'), BY_ID[FANOUT])
    assert spanset.attributes == {"avg(duration)": 25_000_000.0, "count()": 4}
    assert spanset.matched == 4


def test_select_attaches_fields_to_each_returned_span() -> None:
    [spanset] = evaluate(
        parse("{ span.http.request.method != nil } | select(span.http.route, status, duration)"), BY_ID[SHOP]
    )
    assert [span.span_id for span in spanset.spans] == [sid(SHOP, 1), sid(SHOP, 3)]
    assert spanset.selected == [
        {"span.http.route": "/checkout", "status": "unset", "duration": 100_000_000},
        {"status": "unset", "duration": 40_000_000},
    ]


def test_spans_come_back_in_trace_order_and_matched_counts_them() -> None:
    [spanset] = evaluate(parse("{ kind = client } &< { kind = internal }"), BY_ID[CART])
    assert [span.span_id for span in spanset.spans] == [sid(CART, 2), sid(CART, 3), sid(CART, 4)]
    assert spanset.matched == 3


def test_coalesce_merges_groups() -> None:
    result = evaluate(parse("{ } | by(resource.service.name) | coalesce()"), BY_ID[SHOP])
    assert len(result) == 1 and result[0].matched == 4 and result[0].attributes == {}


def test_matching_spans_for_metrics_queries() -> None:
    query = parse('{ resource.service.name = "api" } | rate() by (span.db.system)')
    assert query.metrics is not None
    assert [span.span_id for span in matching_spans(query, BY_ID[USERS])] == [sid(USERS, 1), sid(USERS, 2)]
    assert matching_spans(query, BY_ID[SHOP]) == []


def test_empty_trace_matches_nothing() -> None:
    assert evaluate(parse("{}"), []) == []


def test_non_matching_trace_gives_an_empty_list() -> None:
    assert evaluate(parse("{ status = error }"), BY_ID[FEATURE]) == []


def test_the_same_parsed_query_gives_the_same_answer_many_times() -> None:
    parsed = parse('{ span.tags =~ "[ab]" } | count() > 0')
    assert all(len(evaluate(parsed, BY_ID[FEATURE])) == 1 for _ in range(50))
