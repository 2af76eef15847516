"""Autocomplete bodies stop each shard after the sample (``terminate_after``), so their cost does not grow
with the stored spans; the sampler frame (and the answer's shape) stays."""

from __future__ import annotations

from tracesearch.storage.es import tag_queries

FILTERS = [{"range": {"@timestamp": {"gte": 0, "lte": 1}}}]


def test_every_sampled_body_stops_each_shard_after_the_sample() -> None:
    bodies = [
        tag_queries.tag_names("span", FILTERS, 10, 500),
        tag_queries.attribute_values("span", "http.route", ["0123456789abcdef"], FILTERS, 10, 500),
        tag_queries.remote_service_names(FILTERS, 10, 500),
        tag_queries.numeric_values("span", "http.status_code", [], ["200"], FILTERS, 500),
        tag_queries.intrinsic_values("name", FILTERS, 10, 500),
    ]
    for body in bodies:
        assert body is not None
        assert body["terminate_after"] == 500
        assert body["aggs"]["sample"]["sampler"] == {"shard_size": 500}
        assert body["size"] == 0


def test_buckets_read_the_same_answer_shape() -> None:
    answer = {"aggregations": {"sample": {"values": {"buckets": [{"key": "span.a=b", "doc_count": 3}]}}}}
    assert tag_queries.buckets(answer) == ["span.a=b"]


def test_key_names_count_a_key_in_each_set_listing_it_and_on_its_own() -> None:
    buckets = [
        {"key": "keys:00000000000000aa", "doc_count": 5},
        {"key": "keys:00000000000000bb", "doc_count": 2},
        {"key": "span.legacy", "doc_count": 4},
        {"key": "keys:00000000000000cc", "doc_count": 9},  # a set the reader does not know: skipped
    ]
    answer = {"aggregations": {"sample": {"values": {"buckets": buckets}}}}
    sets = {
        "00000000000000aa": ["span.http.route", "span.http.method", "resource.host"],
        "00000000000000bb": ["span.http.route", "span.db.system"],
    }
    assert tag_queries.key_names(answer, "span", 10, sets) == ["http.route", "http.method", "legacy", "db.system"]
    assert tag_queries.key_names(answer, "span", 2, sets) == ["http.route", "http.method"]
    assert tag_queries.key_names(answer, "resource", 10, sets) == ["host"]


def test_presence_of_a_key_also_asks_for_the_sets_listing_it() -> None:
    body = tag_queries.attribute_values("span", "k", ["00000000000000aa"], FILTERS, 10, 500)
    present = body["query"]["bool"]["filter"][-1]
    assert present == {
        "bool": {
            "should": [{"terms": {"tags": ["span.k"]}}, {"terms": {"tags": ["keys:00000000000000aa"]}}],
            "minimum_should_match": 1,
        }
    }
    without_sets = tag_queries.attribute_values("span", "k", [], FILTERS, 10, 500)
    assert without_sets["query"]["bool"]["filter"][-1] == {"terms": {"tags": ["span.k"]}}
