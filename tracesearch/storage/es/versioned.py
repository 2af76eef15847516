"""Small documents read and written with optimistic concurrency, in small indices of their own.

What the adaptive-sampling store and the alert store share: a ``GET`` by id (real time) returning the
document with its version (``_seq_no``, ``_primary_term``), and a write that creates the document
(``op_type=create``) or replaces exactly the version read, so of two processes writing from the same
version one succeeds and the other is told (409). Also: creating such an index once, and waiting out a
shard that is still starting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import elasticsearch
from elasticsearch import Elasticsearch

from tracesearch.storage.contracts import StateVersion, StorageUnavailable
from tracesearch.storage.es.search import CREATION_RETRIES, CREATION_WAIT_S, call

T = TypeVar("T")
SHARD_STARTING = ("no_shard_available_action_exception", "illegal_index_shard_state_exception")


def while_shard_starts(request: Callable[[], T]) -> T:
    """``call``, waiting (a second at most) for a shard that is still starting: a GET right after the
    index was created answers 503 (no shard available, shard RECOVERING) now and then, even once the
    cluster's health said the shard started (as searches do: ``search.search``)."""
    for _ in range(CREATION_RETRIES):
        try:
            return call(request)
        except StorageUnavailable as exc:
            if not any(word in str(exc) for word in SHARD_STARTING):
                raise
            time.sleep(CREATION_WAIT_S)
    return call(request)


def unless_conflict(request: Callable[[], object]) -> bool:
    """Run a conditional write: True when done, False when Elasticsearch answered 409 (the version
    changed, or the document was created meanwhile); other failures as ``search.call`` raises them."""

    def attempt() -> bool:
        try:
            request()
        except elasticsearch.ConflictError:
            return False
        return True

    return call(attempt)


def get_versioned(client: Elasticsearch, index: str, doc_id: str) -> tuple[dict[str, Any] | None, StateVersion]:
    """The document's source and version; (None, None) when there is no such document (or index)."""

    def get() -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = client.get(index=index, id=doc_id).body
        except elasticsearch.NotFoundError:
            return None
        return body

    body = while_shard_starts(get)
    if body is None:
        return None, None
    return body["_source"], (int(body["_seq_no"]), int(body["_primary_term"]))


def write_versioned(
    client: Elasticsearch, index: str, doc_id: str, document: dict[str, Any], version: StateVersion
) -> bool:
    """Create the document (``version`` None) or replace the one at ``version``; False on a conflict."""
    options: dict[str, Any] = {"op_type": "create"}
    if version is not None:
        options = {"if_seq_no": version[0], "if_primary_term": version[1]}
    return unless_conflict(lambda: client.index(index=index, id=doc_id, document=document, **options))


def create_index(client: Elasticsearch, index: str, mappings: dict[str, Any], replicas: int) -> None:
    """Create the one-shard index unless it exists, then wait until its shard is usable: a process that
    found the index created by another may be ahead of its shard's start."""

    def create() -> None:
        try:
            client.indices.create(
                index=index, mappings=mappings, settings={"number_of_shards": 1, "number_of_replicas": replicas}
            )
        except elasticsearch.BadRequestError as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise

    call(create)
    call(lambda: client.cluster.health(index=index, wait_for_status="yellow", timeout="30s"))
