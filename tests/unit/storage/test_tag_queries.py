"""Autocomplete bodies stop each shard after the sample (``terminate_after``), so their cost does not grow
with the stored spans; the sampler frame (and the answer's shape) stays."""

from __future__ import annotations

from tracesearch.storage.es import tag_queries

FILTERS = [{"range": {"@timestamp": {"gte": 0, "lte": 1}}}]


def test_every_sampled_body_stops_each_shard_after_the_sample() -> None:
    bodies = [
        tag_queries.tag_names("span", FILTERS, 10, 500),
        tag_queries.attribute_values("span", "http.route", FILTERS, 10, 500),
        tag_queries.remote_service_names(FILTERS, 10, 500),
        tag_queries.numeric_values("span", "http.status_code", ["200"], FILTERS, 500),
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
