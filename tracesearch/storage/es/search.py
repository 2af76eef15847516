"""One search call with the reader's error mapping: unreachable or 429/5xx is ``StorageUnavailable``."""

from __future__ import annotations

from typing import Any

import elasticsearch
from elasticsearch import Elasticsearch

from tracesearch.storage.base import StorageUnavailable


def search(client: Elasticsearch, index: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = client.search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True)
    except (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout) as exc:
        raise StorageUnavailable(f"Elasticsearch unreachable: {exc}") from exc
    except elasticsearch.ApiError as exc:
        if exc.meta.status == 429 or exc.meta.status >= 500:
            raise StorageUnavailable(f"Elasticsearch answered {exc.meta.status}: {exc}") from exc
        raise
    answer: dict[str, Any] = response.body
    return answer
