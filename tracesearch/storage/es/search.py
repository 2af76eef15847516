"""Elasticsearch calls with the storage contract's errors: unreachable or 429/5xx is
``StorageUnavailable``, a query Elasticsearch refuses (400) is ``UnsupportedQuery``. The only place
(with the writers) that knows the client's exceptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import elasticsearch
from elasticsearch import Elasticsearch

from tracesearch.storage.contracts import StorageUnavailable, UnsupportedQuery

T = TypeVar("T")
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
        raise StorageUnavailable(f"Elasticsearch answered {exc.meta.status}: {exc}") from exc
    except elasticsearch.TransportError as exc:
        raise StorageUnavailable(f"Elasticsearch unreachable: {exc}") from exc


def search(client: Elasticsearch, index: str, body: dict[str, Any]) -> dict[str, Any]:
    response = call(lambda: client.search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True))
    answer: dict[str, Any] = response.body
    return answer
