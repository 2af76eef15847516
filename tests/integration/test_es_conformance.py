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
from tracesearch.storage.es import span_reader
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

    def msearch(self, **kwargs: Any) -> Any:
        answer = self._client.msearch(**kwargs)
        self.hits += sum(len(one["hits"]["hits"]) for one in answer.body["responses"])
        self.sizes += [body["size"] for body in kwargs["searches"][1::2]]
        return answer


@pytest.mark.parametrize("each_trace", [True, False], ids=["search-each-trace", "one-search"])
def test_a_runaway_trace_is_read_no_further_than_max_spans(es_url: str, each_trace: bool) -> None:
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
        reader = EsSpanReader(
            cast(Elasticsearch, counting), prefix, settings.trace_lookback_s, 3600.0, search_each_trace=each_trace
        )

        assert len(reader.get_trace(big, max_spans=101)) == 101
        assert (counting.hits, counting.sizes) == (101, [101])  # one page, of exactly the spans kept

        counting.hits, counting.sizes = 0, []
        found = reader.traces([big, small], b.base_ns - 10**9, b.base_ns + 10**10, max_spans=101)
        assert (len(found[big]), len(found[small])) == (101, 5)
        if each_trace:  # one search per trace, in one _msearch, each asking what its trace may still take
            assert (counting.hits, counting.sizes) == (101 + 5, [101, 101])
        else:  # the small trace's spans lie among the big one's first ones: a page or two, never the 3,000
            assert counting.hits <= 2 * (101 + 5)
    finally:
        drop_prefix(es_url, prefix)


@pytest.mark.parametrize("each_trace", [True, False], ids=["sorted-search-each-trace", "unsorted-one-search"])
def test_traces_are_read_whole_through_pages(es_url: str, monkeypatch: pytest.MonkeyPatch, each_trace: bool) -> None:
    """Pages of ``search_after`` (each trace's own, or all traces' together); every span comes back once, in
    order."""
    prefix = f"it-pages-{uuid.uuid4().hex[:8]}"
    sort = "true" if each_trace else "false"
    env = {"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix, "TRACESEARCH_INDEX_SORT_BY_TRACE": sort}
    settings = Settings.from_env(env)
    client = make_client(settings)
    b = Builder(time.time_ns() - 60 * 10**9)
    sizes = {new_trace_id(): n for n in (23, 5, 1, 10)}
    spans = [
        b.span("pages", f"s{i}", trace_id=t, at_ms=i + k / 10)
        for k, (t, n) in enumerate(sizes.items())
        for i in range(n)
    ]
    try:
        assert (
            EsSpanWriter(client, prefix, prepare=TemplateInstaller(client, settings).ensure).write(spans).rejected == []
        )
        requests.post(f"{es_url}/{prefix}-*/_refresh", timeout=30).raise_for_status()
        index = requests.get(f"{es_url}/{prefix}-span-*/_settings", timeout=30).json().popitem()[1]["settings"]["index"]
        assert index.get("sort") == ({"field": "trace.id", "order": "asc"} if each_trace else None)
        monkeypatch.setattr(span_reader, "PAGE_SIZE", 12)
        monkeypatch.setattr(span_reader, "MIN_TRACE_PAGE", 2)  # 12 // 5 traces: 2 hits per trace and page
        counting = CountingClient(client)
        reader = EsSpanReader(
            cast(Elasticsearch, counting), prefix, settings.trace_lookback_s, 3600.0, search_each_trace=each_trace
        )
        found = reader.traces([*sizes, new_trace_id()], b.base_ns - 10**9, b.base_ns + 10**10)
        assert {t: len(found[t]) for t in sizes} == sizes
        for trace in found.values():
            assert [s.start_ns for s in trace] == sorted(s.start_ns for s in trace)
        assert counting.hits == sum(sizes.values())
        capped = reader.traces(list(sizes), b.base_ns - 10**9, b.base_ns + 10**10, max_spans=4)
        assert {t: len(capped[t]) for t in sizes} == {t: min(n, 4) for t, n in sizes.items()}
    finally:
        drop_prefix(es_url, prefix)
