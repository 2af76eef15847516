"""How the Elasticsearch client's exceptions become the storage contract's errors."""

from __future__ import annotations

import elasticsearch
import pytest

from tracesearch.storage.contracts import StorageUnavailable, UnsupportedQuery
from tracesearch.storage.es.search import call


def _raise(exc: Exception) -> None:
    raise exc


def test_a_request_that_cannot_be_serialised_is_the_querys_fault_not_an_outage() -> None:
    # Found by the API fuzz: an integer past 64 bits in a query (orjson refuses it) was answered 503.
    with pytest.raises(UnsupportedQuery, match="cannot be sent"):
        call(lambda: _raise(elasticsearch.SerializationError("Unable to serialize to JSON")))


def test_a_connection_failure_is_an_outage() -> None:
    with pytest.raises(StorageUnavailable, match="unreachable"):
        call(lambda: _raise(elasticsearch.ConnectionError("refused")))
