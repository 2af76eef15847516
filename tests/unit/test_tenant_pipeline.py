"""Tenants in Kafka mode and on /metrics, the pure parts: a record's tenant and key, the ingester's
routing of records to their tenant's store pipeline, a batch written tenant by tenant, one producer per
process, and the ``tenant`` label of the span metrics (a tenant's page holds its own series only).
The real broker and Elasticsearch: tests/integration/test_tenant_kafka.py."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.codecs.factories import make_span
from tracesearch import prometheus
from tracesearch.admission import Limits
from tracesearch.codecs import otlp_proto
from tracesearch.components import Components
from tracesearch.model import Span
from tracesearch.pipeline.kafka_ingester import Batch, Ingester
from tracesearch.pipeline.kafka_sink import KafkaSink
from tracesearch.pipeline.kafka_tenants import InvalidTenantHeader, record_headers, record_key, tenant_of
from tracesearch.pipeline.store import StorePipeline
from tracesearch.pipeline.tenant_writes import TenantWrites
from tracesearch.settings import Settings
from tracesearch.storage.contracts import StorageUnavailable, WriteResult
from tracesearch.storage.memory import MemoryStore
from tracesearch.tenancy import TooManyTenants

TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_the_default_tenant_keeps_the_keys_of_before_tenants_and_sends_no_header() -> None:
    assert record_key(None, TRACE) == TRACE.encode() and record_headers(None) == []
    assert record_key("team-a", TRACE) == f"team-a/{TRACE}".encode()
    assert record_headers("team-a") == [("tenant", b"team-a")]
    assert tenant_of(record_headers("team-a")) == "team-a"
    assert tenant_of([]) is None and tenant_of(None) is None and tenant_of([("other", b"x")]) is None


@pytest.mark.parametrize(
    "headers",
    [
        [("tenant", b"")],
        [("tenant", None)],
        [("tenant", b"Team-A")],
        [("tenant", b"a.b")],
        [("tenant", b"\xff\xfe")],
        [("tenant", b"a"), ("tenant", b"b")],
        [("tenant", b"x" * 100)],
    ],
)
def test_a_header_naming_no_valid_tenant_is_refused_never_read_as_the_default(
    headers: list[tuple[str, bytes | None]],
) -> None:
    with pytest.raises(InvalidTenantHeader):
        tenant_of(headers)


class Unavailable(MemoryStore):
    """Storage that is away for the first ``failures`` writes."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures
        self.writes = 0

    def write(self, spans: Sequence[Span]) -> WriteResult:
        self.writes += 1
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("away")
        return super().write(spans)


def test_a_retry_writes_only_the_tenants_not_stored_yet() -> None:
    stores = {None: Unavailable(0), "a": Unavailable(1), "b": Unavailable(0)}
    pipelines = {tenant: StorePipeline(store) for tenant, store in stores.items()}
    groups: dict[str | None, list[Span]] = {
        None: [make_span(span_id="1" * 16)],
        "a": [make_span(span_id="2" * 16)],
        "b": [make_span(span_id="3" * 16)],
    }
    writes = TenantWrites(groups, pipelines.__getitem__)
    with pytest.raises(StorageUnavailable):
        writes.store()
    assert (stores[None].writes, stores["a"].writes, stores["b"].writes) == (1, 1, 0)
    assert writes.store() is writes and writes.result.stored == 3
    assert (stores[None].writes, stores["a"].writes, stores["b"].writes) == (1, 2, 1)
    assert [s.span_id for s in stores["b"].get_trace(TRACE)] == ["3" * 16]


def record(value: bytes, headers: list[tuple[str, bytes]], offset: int = 0) -> ConsumerRecord:
    return ConsumerRecord("spans", 0, -1, offset, 0, 0, None, value, headers, None, -1, len(value), -1)


def test_the_ingester_routes_each_record_to_its_tenant_and_dead_letters_a_bad_header() -> None:
    asked: list[str | None] = []

    def pipeline_of(tenant: str | None) -> StorePipeline:
        asked.append(tenant)
        if tenant == "over-the-cap":
            raise TooManyTenants("this process serves 1 tenants already")
        return StorePipeline(MemoryStore())

    ingester = Ingester(Settings(), pipeline_of, Limits())
    value = otlp_proto.encode_export_request([make_span()])
    batch = Batch(
        [
            record(value, [], 0),
            record(value, record_headers("a"), 1),
            record(value, [("tenant", b"Not A Tenant")], 2),
            record(value, record_headers("over-the-cap"), 3),
            record(b"\x00garbage", record_headers("a"), 4),
            record(value, record_headers("a"), 5),
        ]
    )
    groups, bad = ingester._decode(batch)
    assert {tenant: len(spans) for tenant, spans in groups.items()} == {None: 1, "a": 2}
    assert [(r.offset, reason.split(":")[0]) for r, reason in bad] == [
        (2, "no tenant to store it in"),
        (3, "no tenant to store it in"),
        (4, "undecodable message"),
    ]
    assert "Not A Tenant" in bad[0][1] and "over-the-cap" not in groups
    assert set(asked) == {None, "a", "over-the-cap"}


def test_one_producer_per_process_every_tenant_sink_over_it() -> None:
    root = Components(Settings(pipeline="kafka", install_templates=False))
    sink, other = root.for_tenant("a").sink, root.for_tenant("b").sink
    assert isinstance(sink, KafkaSink) and isinstance(other, KafkaSink) and isinstance(root.sink, KafkaSink)
    assert sink._producer is root.sink._producer is other._producer
    assert (sink._tenant, other._tenant, root.sink._tenant) == ("a", "b", None)
    assert sink._headers == [("tenant", b"a")] and root.sink._headers == []
    root.close()  # nothing was sent: no broker needed


def registry_with_tenants() -> CollectorRegistry:
    registry = CollectorRegistry()
    calls = Counter("calls", "c", ["tenant", "service"], registry=registry)
    calls.labels("", "shop").inc(1)
    calls.labels("a", "shop").inc(2)
    calls.labels("b", "bank").inc(3)
    Counter("received", "process-wide", ["transport"], registry=registry).labels("otlp").inc(6)
    return registry


def test_a_tenant_sees_its_own_series_only() -> None:
    view = CollectorRegistry(auto_describe=False)
    view.register(prometheus._TenantView(registry_with_tenants(), "a"))
    from prometheus_client import generate_latest

    text = generate_latest(view).decode()
    samples = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]
    assert ("calls_total", {"tenant": "a", "service": "shop"}, 2.0) in samples
    assert all(labels.get("tenant") == "a" for _, labels, _ in samples), samples
    assert "bank" not in text and "received" not in text


def test_the_servicegraph_series_carry_the_tenant_and_the_page_is_cut_to_it() -> None:
    from tracesearch.servicegraph.aggregator import Aggregator
    from tracesearch.servicegraph.stage import Counters

    aggregator = Aggregator(max_series=100)
    aggregator.add_spans([make_span(name="tenant-label-test-span")])
    snapshot = aggregator.drain()
    prometheus.servicegraph_publisher("tenant-label-a")(snapshot, Counters(expired_unpaired=1))
    prometheus.publish_servicegraph(snapshot, Counters())  # the default tenant's: tenant=""
    everything = prometheus.exposition()[0].decode()
    assert 'tenant="tenant-label-a"' in everything and "tracesearch_spans_received_total" in everything
    assert 'tenant=""' in everything
    own = prometheus.exposition("tenant-label-a")[0].decode()
    families = {f.name: f for f in text_string_to_metric_families(own)}
    assert "traces_spanmetrics_calls" in families and "tracesearch_servicegraph_expired_unpaired" in families
    assert all(s.labels["tenant"] == "tenant-label-a" for f in families.values() for s in f.samples)
    assert "tracesearch_spans_received_total" not in own
    assert prometheus.exposition("tenant-label-b")[0] == b""
    # no key on an open /metrics while keys are in use: process-wide and the default tenant's, no tenant's
    anonymous = prometheus.exposition(prometheus.ANONYMOUS)[0].decode()
    assert "tracesearch_spans_received_total" in anonymous and 'tenant=""' in anonymous
    assert "tenant-label-a" not in anonymous
