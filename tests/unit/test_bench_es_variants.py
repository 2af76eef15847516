"""The variants ``python -m bench.es_cost`` prices: each changes the span templates as TemplateInstaller
renders them, or the bulk bodies as ``to_bulk_lines`` writes them, and nothing else."""

from __future__ import annotations

import base64
import copy
import dataclasses

import orjson
import pytest

from bench import synth
from bench.es_cost_measure import Disk, FieldUsage, Pass, lease_passed, parse_disk_usage, pass_from_json
from bench.es_cost_report import installed
from bench.es_variants import BASELINE, UnknownVariant, apply_to_body, apply_to_templates, variant
from tracesearch.model import Resource, Scope, Span, SpanKind
from tracesearch.settings import Settings
from tracesearch.storage.es.document import bulk_body, to_bulk_lines
from tracesearch.storage.es.templates import load_templates

PREFIX = "escost"


def _components() -> dict[str, object]:
    components, _ = load_templates(Settings(index_prefix=PREFIX))
    return components


def _mappings(components: dict[str, object]) -> dict[str, object]:
    return components[f"{PREFIX}-span-mappings"]["template"]["mappings"]  # type: ignore[index,no-any-return]


def _index_settings(components: dict[str, object]) -> dict[str, object]:
    return components[f"{PREFIX}-span-settings"]["template"]["settings"]["index"]  # type: ignore[index,no-any-return]


def test_the_baseline_is_the_installed_templates() -> None:
    components = _components()
    assert apply_to_templates(components, BASELINE) == components


def test_a_field_parameter_is_merged_into_a_nested_field_and_the_input_is_left_alone() -> None:
    components = _components()
    before = copy.deepcopy(components)
    changed = _mappings(apply_to_templates(components, variant("ids_no_dv")))
    assert changed["properties"]["span"]["properties"]["id"] == {"type": "keyword", "doc_values": False}  # type: ignore[index]
    assert changed["properties"]["parent"]["properties"]["id"]["doc_values"] is False  # type: ignore[index]
    assert components == before


def _with_excludes() -> dict[str, object]:
    """The templates as they were before the search-only fields went into ``_source`` (index format 1)."""
    components = _components()
    _mappings(components)["_source"] = {"excludes": ["tags", "tags_num", "text"]}
    return components


def test_a_dropped_field_leaves_the_mapping_and_the_source_excludes() -> None:
    mappings = _mappings(apply_to_templates(_with_excludes(), variant("no_text")))
    assert "text" not in mappings["properties"]  # type: ignore[operator]
    assert mappings["_source"] == {"excludes": ["tags", "tags_num"]}


def test_full_source_removes_the_excludes() -> None:
    assert "_source" not in _mappings(apply_to_templates(_with_excludes(), variant("full_source")))


def test_settings_and_combinations() -> None:
    combined = variant("best_compression+refresh_30s+tags_no_dv")
    components = apply_to_templates(_components(), combined)
    assert _index_settings(components)["codec"] == "best_compression"
    assert _index_settings(components)["refresh_interval"] == "30s"
    assert _mappings(components)["properties"]["tags"]["doc_values"] is False  # type: ignore[index]
    assert combined.name == "best_compression+refresh_30s+tags_no_dv"
    assert not combined.changes_documents


def test_refresh_default_leaves_the_refresh_interval_out() -> None:
    settings = _index_settings(apply_to_templates(_components(), variant("best_compression+refresh_default")))
    assert "refresh_interval" not in settings
    assert settings["search.idle.after"] == "1s"
    assert settings["codec"] == "best_compression"


def test_unknown_names_are_refused() -> None:
    with pytest.raises(UnknownVariant, match="nope"):
        variant("baseline+nope")


def _body() -> bytes:
    resource = Resource({"service.name": "shop"}, "shop")
    spans = [
        Span("a" * 32, f"{i:016x}", "GET /", 10**18, 10**18 + 5, resource, Scope(), "", attributes={"k": i})
        for i in (1, 2)
    ]
    return b"".join(to_bulk_lines("escost-span-2026-01-01", s) for s in spans)


def _span(trace_id: str = "ab" * 16, start_ns: int = 10**18, end_ns: int = 10**18 + 5) -> Span:
    resource = Resource({"service.name": "shop"}, "shop")
    return Span(trace_id, "cd" * 8, "GET /", start_ns, end_ns, resource, Scope(), "", kind=SpanKind.CLIENT)


def _lines(body: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in body.splitlines()]


def test_bodies_are_untouched_unless_the_variant_changes_documents() -> None:
    body = _body()
    assert apply_to_body(body, variant("best_compression+full_source")) is body


def test_auto_id_drops_the_id_and_no_text_the_field() -> None:
    lines = _lines(apply_to_body(_body(), variant("auto_id+no_text")))
    original = _lines(_body())
    assert [line["create"] for line in lines[::2]] == [{"_index": "escost-span-2026-01-01"}] * 2
    assert all("text" not in doc for doc in lines[1::2])
    assert [{k: v for k, v in doc.items() if k != "text"} for doc in original[1::2]] == lines[1::2]


def test_the_lease_has_passed_once_every_lease_retains_only_later_operations() -> None:
    shard = {"seq_no": {"max_seq_no": 99}, "retention_leases": {"leases": [{"retaining_seq_no": 50}]}}
    assert not lease_passed(shard)
    shard["retention_leases"] = {"leases": [{"retaining_seq_no": 100}]}
    assert lease_passed(shard)
    assert not lease_passed({"seq_no": {"max_seq_no": 99}, "retention_leases": {"leases": []}})


def test_disk_usage_is_read_per_field() -> None:
    usage = {
        "fields": {
            "tags": {
                "total_in_bytes": 10,
                "inverted_index": {"total_in_bytes": 4},
                "stored_fields_in_bytes": 0,
                "doc_values_in_bytes": 6,
                "points_in_bytes": 0,
                "norms_in_bytes": 0,
            },
            "_source": {"total_in_bytes": 7, "stored_fields_in_bytes": 7},
        }
    }
    fields = parse_disk_usage(usage)
    assert (fields["tags"].inverted, fields["tags"].doc_values) == (4, 6)
    assert (fields["_source"].total, fields["_source"].stored, fields["_source"].inverted) == (7, 7, 0)


def test_a_pass_survives_its_json_file() -> None:
    disk = Disk(100, 60, 3.0, 1.5, {"tags": FieldUsage(10, 4, 0, 6, 0, 0)})
    measured = Pass("baseline", 1000, 0.1, 2.0, 1.0, 3.0, 0.2, disk)
    assert pass_from_json(orjson.loads(orjson.dumps(dataclasses.asdict(measured)))) == measured
    assert measured.cpu_us_per_span == pytest.approx(100.0)
    assert measured.other_cores == pytest.approx((3.0 - 0.1 - 0.2) / 3.0)


def test_resource_once_leaves_out_the_resource_terms_and_words_only() -> None:
    resource = Resource({"service.name": "shop", "host.name": "node-1", "pid": 7}, "shop")
    span = Span("a" * 32, "b" * 16, "GET /", 10**18, 10**18 + 5, resource, Scope(), attributes={"host": "h"})
    original = _lines(to_bulk_lines("escost-span-2026-01-01", span))[1]
    changed = _lines(apply_to_body(to_bulk_lines("escost-span-2026-01-01", span), variant("resource_once")))[1]
    assert changed["tags"] == [t for t in original["tags"] if not t.startswith("resource.")]  # type: ignore[attr-defined]
    assert "resource.pid" not in str(changed.get("tags_num"))
    assert changed["text"] == "GET /\nh"
    assert changed["source"] == original["source"]


def _key_span(span_id: str) -> Span:
    return Span(
        "a" * 32,
        span_id,
        "GET /",
        10**18,
        10**18 + 5,
        Resource({"service.name": "shop"}, "shop"),
        Scope(),
        attributes={"http.route": "/x", "retries": 2},
    )


def test_tags_no_keys_keeps_the_key_value_terms_only() -> None:
    body = bulk_body("escost", [_key_span("b" * 16), _key_span("c" * 16)])
    original = _lines(body)[1::2]
    changed = _lines(apply_to_body(body, variant("tags_no_keys")))[1::2]
    for before, after in zip(original, changed, strict=True):
        assert after["tags"] == [t for t in before["tags"] if "=" in t]  # type: ignore[attr-defined]
        assert "span.http.route=/x" in after["tags"]
        assert not [t for t in after["tags"] if t.startswith("key")]
        assert {k: v for k, v in after.items() if k != "tags"} == {k: v for k, v in before.items() if k != "tags"}
    assert variant("resource_once+tags_no_keys").no_keys


def test_bare_keys_is_the_format_before_key_sets() -> None:
    body = bulk_body("escost", [_key_span("b" * 16), _key_span("c" * 16)])
    changed = _lines(apply_to_body(body, variant("bare_keys")))[1::2]
    for document in changed:
        keys = [t for t in document["tags"] if "=" not in t]  # type: ignore[attr-defined]
        assert keys == ["span.http.route", "span.retries", "resource.service.name"]
        assert not [t for t in document["tags"] if t.startswith("key")]  # type: ignore[attr-defined]


def test_the_report_says_what_the_service_installs() -> None:
    now = installed(_components())
    assert "`index.codec` best_compression" in now and "every field (no excludes)" in now
    assert "unset (search-idle applies)" in now and "`index.sort` none" in now
    before = installed(
        load_templates(Settings(index_prefix=PREFIX, index_refresh_interval="1s"))[0]
        | {f"{PREFIX}-span-mappings": _with_excludes()[f"{PREFIX}-span-mappings"]}
    )
    assert "excludes `tags`, `tags_num`, `text`" in before and "`refresh_interval` `1s`" in before


def test_sort_trace_and_unsorted_add_and_remove_the_sort_by_trace_id() -> None:
    components = _components()
    assert "sort" not in _index_settings(components)
    sorted_by_trace = _index_settings(apply_to_templates(components, variant("sort_trace")))
    assert (sorted_by_trace["sort.field"], sorted_by_trace["sort.order"]) == ("trace.id", "asc")
    installed_sorted = load_templates(Settings(index_prefix=PREFIX, index_sort_by_trace=True))[0]
    assert "sort" in _index_settings(installed_sorted)
    assert "sort" not in _index_settings(apply_to_templates(installed_sorted, variant("unsorted+lz4")))


def test_time_id_is_deterministic_time_ordered_and_unique_per_kind() -> None:
    client = _span()
    server = dataclasses.replace(client, kind=SpanKind.SERVER)
    later = dataclasses.replace(client, start_ns=client.start_ns + 10**9, end_ns=client.end_ns + 10**9)

    def ids(*spans: Span) -> list[str]:
        body = b"".join(to_bulk_lines("i", s) for s in spans)
        lines = apply_to_body(body, variant("time_id")).split(b"\n")[0:-1:2]
        return [orjson.loads(line)["create"]["_id"] for line in lines]

    first, same, other_kind, after = ids(client, client, server, later)
    assert first == same and first != other_kind and len(first) == 39
    assert first < after  # base64url of a big-endian second: later seconds sort after (same trace and span)
    assert base64.urlsafe_b64decode(first + "=")[4:20] == bytes.fromhex(client.trace_id)


def test_arrival_order_interleaves_traces_by_end_time() -> None:
    a = [_span(trace_id="a" * 32, start_ns=10, end_ns=50), _span(trace_id="a" * 32, start_ns=20, end_ns=30)]
    b = [_span(trace_id="b" * 32, start_ns=15, end_ns=40)]
    assert [(s.trace_id[0], s.end_ns) for s in synth.arrival_order([a, b])] == [("a", 30), ("b", 40), ("a", 50)]
