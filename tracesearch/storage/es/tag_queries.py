"""Query bodies for tag-name and tag-value autocomplete (Tempo's tag endpoints).

Both read the ``tags`` keyword field of span documents: ``span.http.method=GET``, and the keys as ids
of key sets (``keys:<id>``, ``key_sets.py``) or, in indices written before key sets and for keys kept
apart, one term each (``span.http.method``). The work is bounded to the first ``sample``
documents of each shard that match the filter, so autocomplete costs the same at a million spans as at
a thousand; a rare value outside the sample is missed, as Tempo also answers from recent blocks only.

``terminate_after`` is what bounds it: Elasticsearch stops collecting a shard after that many
documents. A ``sampler`` alone does not: it keeps the best-scoring ``shard_size`` documents, but to
find them it scores every matching document, so its cost grew with the stored spans (the growth
bench: tag values p95 1.45x from 1M to 3M spans). Under a filter every score is equal, and ties go
to the lower document id, so the sampler kept exactly the first documents that ``terminate_after``
now stops at: the same sample, the same answers. The sampler stays as the aggregation's frame
(the answer's shape, and a bound of its own should ``terminate_after`` ever be ignored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tracesearch.query.remote_service import REMOTE_SERVICE_FIELD
from tracesearch.query.span_terms import encode_number
from tracesearch.storage.es.compiler import Query, bool_, has_key, lucene_prefix, term
from tracesearch.storage.es.key_sets import ID_CHARS, KEY_SET_ID_PREFIX

NS_PER_MS = 1_000_000
ATTRIBUTE_SCOPES = ("resource", "span", "event", "link", "instrumentation")
# Fields of the span document that hold an intrinsic's value directly.
INTRINSIC_VALUE_FIELDS = {
    "name": "span.name",
    "status": "status.code",
    "kind": "span.kind",
    "statusMessage": "status.message",
    "rootName": "span.name",
    "rootServiceName": "service.name",
}
# Intrinsics whose values live in ``tags`` under a ``<name>=`` prefix.
INTRINSIC_TAG_PREFIXES = {"event:name": "event:name=", "instrumentation:name": "instrumentation:name="}
ROOT_ONLY = frozenset({"rootName", "rootServiceName"})
# Buckets asked for key names at least: distinct key sets, not keys (a scope's keys spread over several sets).
KEY_SET_BUCKETS = 1_000


def _sampled_terms(filters: list[Query], field: str, size: int, sample: int, include: str | None) -> dict[str, Any]:
    terms: dict[str, Any] = {"field": field, "size": size}
    if include is not None:
        terms["include"] = include
    return {
        "size": 0,
        "track_total_hits": False,
        "terminate_after": sample,
        "query": bool_(filter=filters),
        "aggs": {"sample": {"sampler": {"shard_size": sample}, "aggs": {"values": {"terms": terms}}}},
    }


def tag_names(scope: str, filters: list[Query], size: int, sample: int) -> dict[str, Any]:
    """Attribute keys of one scope: the ids of key sets, and keys kept one term each (the ``tags``
    entries without ``=``); ``key_names`` turns the buckets into keys."""
    include = rf"{re.escape(scope)}\.[^=]*|{KEY_SET_ID_PREFIX}[0-9a-f]{{{ID_CHARS}}}"
    return _sampled_terms(filters, "tags", max(size, KEY_SET_BUCKETS), sample, include=include)


def key_names(answer: dict[str, Any], scope: str, size: int, sets: Mapping[str, list[str]]) -> list[str]:
    """The keys of ``tag_names``' answer without their scope, the most frequent first: a key's count is
    that of its own term plus those of the key sets listing it (``sets``: the keys of each set by id)."""
    counts: dict[str, int] = {}
    for bucket in _value_buckets(answer):
        term, count = str(bucket["key"]), int(bucket.get("doc_count", 0))
        keys = sets.get(term[len(KEY_SET_ID_PREFIX) :], []) if term.startswith(KEY_SET_ID_PREFIX) else [term]
        for key in keys:
            counts[key] = counts.get(key, 0) + count
    prefix = f"{scope}."
    ranked = sorted(((k, n) for k, n in counts.items() if k.startswith(prefix)), key=lambda item: (-item[1], item[0]))
    return [key[len(prefix) :] for key, _ in ranked[:size]]


def attribute_values(
    scope: str, key: str, key_sets: Sequence[str], filters: list[Query], size: int, sample: int
) -> dict[str, Any]:
    """Values of one key, among the spans that have it (``key_sets``: ids of the sets listing it)."""
    prefix = f"{scope}.{key}"
    present = has_key([prefix], key_sets)
    return _sampled_terms([*filters, present], "tags", size, sample, lucene_prefix(prefix + "="))


def remote_service_names(filters: list[Query], size: int, sample: int) -> dict[str, Any]:
    """The ``zipkin:remoteServiceName=`` terms of the spans that have one."""
    prefix = f"{REMOTE_SERVICE_FIELD}="
    return _sampled_terms([*filters, term("tags", REMOTE_SERVICE_FIELD)], "tags", size, sample, lucene_prefix(prefix))


def numeric_values(
    scope: str, key: str, key_sets: Sequence[str], candidates: list[str], filters: list[Query], sample: int
) -> dict[str, Any]:
    """Which of the candidate values are stored as numbers (``tags_num`` has no doc values, so one
    ``filters`` bucket per candidate), to tell the number 500 from the string "500"."""
    named = {value: term("tags_num", f"{scope}.{key}={encode_number(float(value))}") for value in candidates}
    return {
        "size": 0,
        "track_total_hits": False,
        "terminate_after": sample,
        "query": bool_(filter=[*filters, has_key([f"{scope}.{key}"], key_sets)]),
        "aggs": {"sample": {"sampler": {"shard_size": sample}, "aggs": {"numeric": {"filters": {"filters": named}}}}},
    }


def numeric_buckets(answer: dict[str, Any]) -> set[str]:
    aggregations = answer.get("aggregations") or {}
    found = aggregations.get("sample", {}).get("numeric", {}).get("buckets", {})
    return {value for value, bucket in found.items() if bucket.get("doc_count", 0) > 0}


def intrinsic_values(name: str, filters: list[Query], size: int, sample: int) -> dict[str, Any] | None:
    if name in INTRINSIC_TAG_PREFIXES:
        prefix = INTRINSIC_TAG_PREFIXES[name]
        return _sampled_terms(filters, "tags", size, sample, include=prefix + ".*")
    field = INTRINSIC_VALUE_FIELDS.get(name)
    if field is None:
        return None
    if name in ROOT_ONLY:
        filters = [*filters, bool_(must_not=[{"exists": {"field": "parent.id"}}])]
    return _sampled_terms(filters, field, size, sample, include=None)


def buckets(answer: dict[str, Any]) -> list[str]:
    return [str(b["key"]) for b in _value_buckets(answer)]


def _value_buckets(answer: dict[str, Any]) -> list[dict[str, Any]]:
    aggregations = answer.get("aggregations") or {}
    found: list[dict[str, Any]] = aggregations.get("sample", {}).get("values", {}).get("buckets", [])
    return found
