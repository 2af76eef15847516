"""Elasticsearch calls with the storage contract's errors: unreachable or 429/5xx is
``StorageUnavailable``, a query Elasticsearch refuses (400) is ``UnsupportedQuery``. The only place
(with the writers) that knows the client's exceptions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import elasticsearch
from elasticsearch import Elasticsearch

from tracesearch.storage.contracts import StorageUnavailable, UnsupportedQuery

T = TypeVar("T")
CREATION_RETRIES = 10
CREATION_WAIT_S = 0.1
TRANSPORT_ERRORS = (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout)


def is_transient(status: int) -> bool:
    """429 and 5xx mean "not now"; every other 4xx means "never"."""
    return status == 429 or status >= 500


def call(request: Callable[[], T]) -> T:
    try:
        return request()
    except TRANSPORT_ERRORS as exc:
        raise StorageUnavailable(f"Elasticsearch unreachable: {exc}") from exc
    except elasticsearch.ApiError as exc:
        if exc.meta.status == 400:
            # Elasticsearch could not run what was asked (a limit of its own, a number out of range).
            raise UnsupportedQuery(f"Elasticsearch refused the query: {exc.message}") from exc
        # 429/5xx: not now; 401/403 and the like: our credentials or the cluster, not the query.
        raise StorageUnavailable(f"Elasticsearch answered {exc.meta.status}: {_reason(exc)}") from exc
    except elasticsearch.SerializationError as exc:
        # The request itself cannot be written (an integer past 64 bits): the query's fault, not an outage.
        raise UnsupportedQuery(f"the query cannot be sent to Elasticsearch: {exc}") from exc
    except elasticsearch.TransportError as exc:
        raise StorageUnavailable(f"Elasticsearch unreachable: {exc}") from exc


def _reason(exc: elasticsearch.ApiError) -> str:
    """The first root cause Elasticsearch gave, which says more than the exception's type."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    causes = error.get("root_cause") if isinstance(error, dict) else None
    if isinstance(causes, list) and causes and isinstance(causes[0], dict):
        return f"{causes[0].get('type', '')}: {causes[0].get('reason', '')}"
    return str(exc)


def _index_being_created(exc: StorageUnavailable) -> bool:
    return "no_shard_available_action_exception" in str(exc)


def search(
    client: Elasticsearch,
    index: str,
    body: dict[str, Any],
    timeout_s: float | None = None,
    filter_path: str | None = None,
) -> dict[str, Any]:
    """A search; one that meets a daily index being created (its shard not started yet: 503
    ``no_shard_available_action_exception``, seen at every midnight UTC and on first writes) waits for
    it, a second at most, instead of failing the reader's request. ``timeout_s``: Elasticsearch's search
    ``timeout``, after which each shard answers with what it collected so far (``timed_out``)."""
    params: dict[str, Any] = {} if timeout_s is None else {"timeout": f"{max(1, int(timeout_s * 1000))}ms"}
    if filter_path is not None:
        params["filter_path"] = filter_path  # only these parts of the answer: less to send and to parse
    for attempt in range(CREATION_RETRIES + 1):
        try:
            response = call(
                lambda: client.search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True, **params)
            )
        except StorageUnavailable as exc:
            if attempt == CREATION_RETRIES or not _index_being_created(exc):
                raise
            time.sleep(CREATION_WAIT_S)
            continue
        answer: dict[str, Any] = response.body
        return answer
    raise AssertionError("unreachable")  # pragma: no cover


def msearch(
    client: Elasticsearch, index: str, bodies: Sequence[dict[str, Any]], timeout_s: float | None = None
) -> list[dict[str, Any]]:
    """Several searches of the same indices in one ``_msearch``, their answers in order, with ``search``'s
    errors and its wait for an index being created: a search Elasticsearch refused (400) is
    ``UnsupportedQuery``, any other failed search ``StorageUnavailable`` (one failed search fails all,
    as the reader needs every answer)."""
    header = {"index": index, "ignore_unavailable": True, "allow_no_indices": True}
    timeout = {} if timeout_s is None else {"timeout": f"{max(1, int(timeout_s * 1000))}ms"}
    searches = [part for body in bodies for part in (header, {**body, **timeout})]
    for attempt in range(CREATION_RETRIES + 1):
        answers: list[dict[str, Any]] = call(lambda: client.msearch(searches=searches)).body["responses"]
        failed = next((a for a in answers if "error" in a), None)
        if failed is None:
            return answers
        status, reason = int(failed.get("status", 500)), _item_reason(failed["error"])
        if status == 400:
            raise UnsupportedQuery(f"Elasticsearch refused the query: {reason}")
        unavailable = StorageUnavailable(f"Elasticsearch answered {status}: {reason}")
        if attempt == CREATION_RETRIES or not _index_being_created(unavailable):
            raise unavailable
        time.sleep(CREATION_WAIT_S)
    raise AssertionError("unreachable")  # pragma: no cover


def _item_reason(error: Any) -> str:
    """The first root cause of one ``_msearch`` answer's error, as ``_reason`` gives it for a search."""
    causes = error.get("root_cause") if isinstance(error, dict) else None
    cause = causes[0] if isinstance(causes, list) and causes and isinstance(causes[0], dict) else error
    if isinstance(cause, dict):
        return f"{cause.get('type', '')}: {cause.get('reason', '')}"
    return str(cause)
