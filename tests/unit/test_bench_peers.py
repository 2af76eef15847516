"""make bench-peers' pure parts: the corpus is deterministic, both encodings carry the same spans, the
section renders every system and figure."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.bench_node import node_settings
from bench.peers import corpus, measure, report, systems, zipkin_json
from bench.peers.measure import Run
from bench.peers.queries import KINDS, QueryStats
from bench.peers.shim import root_answer

ANCHOR = 1_780_000_000 * 10**9
SIZE, WARMUP, BATCH = 2_000, 300, 128


def _build(seed: int = 7) -> corpus.Corpus:
    return corpus.build(SIZE, WARMUP, seed, ANCHOR, BATCH)


def test_the_corpus_is_the_same_for_the_same_seed_and_anchor() -> None:
    first, second = _build(), _build()
    assert first.digest() == second.digest()
    assert first.by_id == second.by_id
    assert _build(seed=8).digest() != first.digest()


def test_both_protocols_carry_every_span_of_every_batch() -> None:
    built = _build()
    assert built.spans == SIZE and sum(built.warmup_spans) == WARMUP
    for part, spans in (("warmup", built.warmup_spans), ("measured", built.measured_spans)):
        otlp_bodies = getattr(built.bodies[corpus.OTLP], part)
        zipkin_bodies = getattr(built.bodies[corpus.ZIPKIN], part)
        for otlp_body, zipkin_body, expected in zip(otlp_bodies, zipkin_bodies, spans, strict=True):
            request = ExportTraceServiceRequest.FromString(otlp_body)
            in_otlp = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            assert in_otlp == len(json.loads(zipkin_body)) == expected


def test_the_zipkin_encoding_keeps_resource_attributes_events_and_errors() -> None:
    spans = [s for batch in corpus.span_batches(400, 3, ANCHOR, 400) for s in batch]
    encoded = [zipkin_json.span_json(s) for s in spans]
    first = encoded[0]
    assert first["localEndpoint"] == {"serviceName": spans[0].resource.service_name}
    assert first["tags"]["host.name"].startswith("node-")  # type: ignore[index]
    assert any("annotations" in e for e in encoded)
    assert any(e["tags"].get("otel.status_code") == "ERROR" for e in encoded)  # type: ignore[attr-defined]
    assert all(isinstance(v, str) for e in encoded for v in e["tags"].values())  # type: ignore[attr-defined]


def test_the_by_id_traces_are_whole_and_in_the_measured_part() -> None:
    built = _build()
    assert built.by_id and all(n >= corpus.BY_ID_MIN_SPANS for n in built.by_id.values())


def _run(system: str, repeat: int, stored: int) -> Run:
    stats = {k: QueryStats(5.0 + repeat, 9.0 + repeat, 40, 0, 3.0) for k in KINDS}
    return Run(system, repeat, 10_000, 10_000, stored, 2.0, 0.5, 0.9, 0.0, 0.1, 9_000_000, 10_000, 300.0, 2.0, stats)


def test_the_section_has_a_column_per_system_and_shows_lost_spans() -> None:
    keys = [("tracesearch-otlp", "tracesearch (OTLP)"), ("zipkin", "Zipkin (defaults)")]
    runs = [_run("tracesearch-otlp", r, 10_000) for r in (1, 2, 3)] + [_run("zipkin", r, 3_000 + r) for r in (1, 2, 3)]
    versions = [("Zipkin", "3.6.1")]
    meta = report.Meta("python -m bench.peers", "today", "abc", "2 CPUs", "load 1", versions, "c", 3, 4, [])
    text = report.section(meta, keys, runs)
    assert text.startswith(report.HEADING + "\n")
    assert "Written by `make bench-peers` (`python -m bench.peers`) on today" in text
    assert "| median of 3 repeats | tracesearch (OTLP) | Zipkin (defaults) |" in text
    assert "| spans stored / sent | 100.0% | 30.0% (30 to 30%) |" in text
    assert "| the system's own CPU, µs/span | 50 | 50 |" in text
    assert "| trace by id | 7.0 / 11.0 (3.0 spans) | 7.0 / 11.0 (3.0 spans) |" in text
    assert text.count("| 2 | ") == 2  # one row per system and repeat
    assert "Wrong answers" not in text


def test_a_wrong_answer_is_named_in_the_section() -> None:
    run = _run("zipkin", 1, 10_000)
    run.queries["search"] = QueryStats(5.0, 9.0, 40, 1, 3.0, "GET /api/v2/traces: HTTP 500 b'Timeout'")
    meta = report.Meta("python -m bench.peers", "today", "abc", "2 CPUs", "load 1", [], "c", 1, 4, [])
    text = report.section(meta, [("zipkin", "Zipkin (defaults)")], [run])
    assert "**1 of 40 wrong**" in text
    assert "- Zipkin (defaults) #1, service + tag search, 1 h: 1 wrong, first `GET /api/v2/traces: HTTP 500" in text


def test_the_shim_answers_get_root_from_the_node_info() -> None:
    nodes = {"cluster_name": "c", "nodes": {"x": {"name": "n", "version": "8.19.21"}}}
    answer = json.loads(root_answer(nodes))
    assert answer["version"]["number"] == "8.19.21" and answer["tagline"] == "You Know, for Search"


def test_the_jaeger_config_names_our_prefix_and_skips_the_version_probe() -> None:
    text = systems.render_jaeger_config("http://127.0.0.1:9250", 8, "peers-jaeger", 1, 2, 3, 4)
    assert "index_prefix: peers-jaeger" in text and "version: 8" in text
    assert "endpoint: 127.0.0.1:1" in text and "server_urls: [http://127.0.0.1:9250]" in text


def test_the_settled_disk_is_its_own_row_and_falls_back_to_the_first_figure() -> None:
    settled = _run("tracesearch-otlp", 1, 10_000)
    settled.settled_bytes = 4_500_000
    unmeasured = _run("zipkin", 1, 10_000)
    assert settled.settled_bytes_per_span == 450 and settled.bytes_per_span == 900
    assert unmeasured.settled_bytes_per_span == unmeasured.bytes_per_span
    rows = report.ingest_rows([("tracesearch-otlp", "ts"), ("zipkin", "z")], [settled, unmeasured])
    assert any(row.startswith("| disk once settled") and "| 450 | 900 |" in row for row in rows)


def test_a_lease_has_passed_only_when_it_retains_nothing_up_to_the_last_operation() -> None:
    def shard(retaining: int) -> dict[str, object]:
        return {"seq_no": {"max_seq_no": 99}, "retention_leases": {"leases": [{"retaining_seq_no": retaining}]}}

    assert measure.lease_passed(shard(100))
    assert not measure.lease_passed(shard(99))
    assert not measure.lease_passed({"seq_no": {"max_seq_no": 99}, "retention_leases": {"leases": []}})


def test_bench_nodes_use_mmap_on_their_own_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACESEARCH_ES_URL", "http://elsewhere:9200")
    settings = node_settings(9250, "1g")
    assert (settings.es_port, settings.es_heap, settings.es_mmap, settings.es_external_url) == (9250, "1g", True, None)
