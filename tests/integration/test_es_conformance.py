"""The storage conformance suite against the real Elasticsearch (8 in ``make test``, 9 in ``make test-es9``)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests
from elasticsearch import Elasticsearch

from tests.integration.conftest import drop_prefix
from tests.storage_conformance import Builder, StorageConformance, Store, new_trace_id
from tracesearch.settings import Settings
from tracesearch.storage.es.aggregate_reader import EsAggregateReader
from tracesearch.storage.es.aggregate_writer import EsAggregateWriter
from tracesearch.storage.es.client import make_client
from tracesearch.storage.es.span_lookup import EsSpanLookup
from tracesearch.storage.es.span_reader import EsSpanReader
from tracesearch.storage.es.span_writer import EsSpanWriter
from tracesearch.storage.es.templates import TemplateInstaller


@pytest.fixture(scope="module")
def store(es_url: str) -> Iterator[Store]:
    prefix = f"it-conf-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
    client = make_client(settings)
    templates = TemplateInstaller(client, settings)

    def refresh() -> None:
        requests.post(f"{es_url}/{prefix}-*/_refresh", timeout=30).raise_for_status()

    reader = EsSpanReader(client, prefix, settings.trace_lookback_s, settings.max_trace_duration_s)
    aggregates = EsAggregateReader(client, prefix)
    yield Store(
        writer=EsSpanWriter(client, prefix, prepare=templates.ensure),
        reader=reader,
        aggregate_writer=EsAggregateWriter(client, prefix, prepare=templates.ensure),
        aggregates=aggregates,
        lookup=EsSpanLookup(client, prefix, settings.max_trace_duration_s),
        refresh=refresh,
        now_ns=time.time_ns(),
        rollups=aggregates,
        presence=reader,
    )
    drop_prefix(es_url, prefix)


class TestElasticsearchStore(StorageConformance):
    pass


def test_a_search_meeting_its_index_being_created_waits_for_it(es_url: str) -> None:
    """Elasticsearch answers 503 (no shard available) to a search of an index whose shard is still
    starting: every daily index does so once, at midnight UTC or at its first write."""
    failures: list[BaseException] = []
    for _ in range(5):
        prefix = f"it-race-{uuid.uuid4().hex[:8]}"
        settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
        client = make_client(settings)
        reader = EsSpanReader(client, prefix, settings.trace_lookback_s, settings.max_trace_duration_s)
        stop = threading.Event()

        def search_until_stopped(reader: EsSpanReader = reader, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                try:
                    reader.candidate_traces([], time.time_ns() - 60 * 10**9, time.time_ns(), 10)
                except Exception as exc:
                    failures.append(exc)
                    return

        searcher = threading.Thread(target=search_until_stopped)
        searcher.start()
        time.sleep(0.05)
        writer = EsSpanWriter(client, prefix, prepare=TemplateInstaller(client, settings).ensure)
        writer.write([Builder(time.time_ns()).span("race")])
        time.sleep(0.05)
        stop.set()
        searcher.join()
        drop_prefix(es_url, prefix)
    assert failures == []


class CountingClient:
    """The real client, counting the span hits Elasticsearch sent back (what the reader held)."""

    def __init__(self, client: Elasticsearch) -> None:
        self._client = client
        self.hits = 0
        self.sizes: list[int] = []

    def search(self, **kwargs: Any) -> Any:
        answer = self._client.search(**kwargs)
        self.hits += len(answer.body["hits"]["hits"])
        self.sizes.append(kwargs["body"]["size"])
        return answer


def test_a_runaway_trace_is_read_no_further_than_max_spans(es_url: str) -> None:
    prefix = f"it-cap-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
    client = make_client(settings)
    b = Builder(time.time_ns() - 60 * 10**9)
    big, small = new_trace_id(), new_trace_id()
    spans = [b.span("runaway", trace_id=big, at_ms=i) for i in range(3_000)]
    spans += [b.span("runaway", trace_id=small, at_ms=i + 0.5) for i in range(5)]
    try:
        assert (
            EsSpanWriter(client, prefix, prepare=TemplateInstaller(client, settings).ensure).write(spans).rejected == []
        )
        requests.post(f"{es_url}/{prefix}-*/_refresh", timeout=30).raise_for_status()
        counting = CountingClient(client)
        reader = EsSpanReader(cast(Elasticsearch, counting), prefix, settings.trace_lookback_s, 3600.0)

        assert len(reader.get_trace(big, max_spans=101)) == 101
        assert (counting.hits, counting.sizes) == (101, [101])  # one page, of exactly the spans kept

        counting.hits, counting.sizes = 0, []
        found = reader.traces([big, small], b.base_ns - 10**9, b.base_ns + 10**10, max_spans=101)
        assert (len(found[big]), len(found[small])) == (101, 5)
        # The small trace's spans lie among the big one's first ones: a page or two, never the 3,000.
        assert counting.hits <= 2 * (101 + 5)
    finally:
        drop_prefix(es_url, prefix)
