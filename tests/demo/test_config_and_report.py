from __future__ import annotations

import pytest

from demo.config import DEFAULT_BASE_URL, NOTE_SEARCH_WORD, ORDER_NOTE, SERVICES, Ingest, resolve_base_url
from demo.report import failure_text, success_text
from demo.traffic import DemoResult, orders


def test_base_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACESEARCH_URL", raising=False)
    assert resolve_base_url(None) == DEFAULT_BASE_URL
    monkeypatch.setenv("TRACESEARCH_URL", "http://ts:9000/")
    assert resolve_base_url(None) == "http://ts:9000"
    assert resolve_base_url("http://cli:1") == "http://cli:1"


def test_every_ingest_path_is_exercised() -> None:
    assert {spec.ingest for spec in SERVICES} == set(Ingest)
    assert NOTE_SEARCH_WORD in ORDER_NOTE.split()


def test_first_order_is_a_successful_fan_out() -> None:
    batch = list(orders(20))
    assert batch == list(orders(20)), "orders must be deterministic"
    assert len(batch[0]["items"]) == 3
    assert batch[0]["card"] != batch[3]["card"]
    assert sum(order["card"] == batch[3]["card"] for order in batch) == 4


def _result(**overrides: object) -> DemoResult:
    fields: dict[str, object] = {
        "base_url": "http://127.0.0.1:4318",
        "services": ("frontend", "checkout", "inventory", "payments"),
        "trace_ids": ("a" * 32, "b" * 32),
        "error_trace_ids": ("b" * 32,),
        "showcase_trace_id": "a" * 32,
        "expected_span_ids": frozenset({"1" * 16}),
        "searchable": True,
        "wait_seconds": 0.4,
        "failed_exports": {},
        "missing_spans": {},
    }
    fields.update(overrides)
    return DemoResult(**fields)  # type: ignore[arg-type]


def test_success_text_has_every_pointer() -> None:
    text = success_text(_result())
    assert f"curl -s http://127.0.0.1:4318/api/traces/{'a' * 32}" in text
    assert "curl -s http://127.0.0.1:4318/api/services" in text
    assert """--data-urlencode service=frontend --data-urlencode 'tags={"http.response.status_code":">=500"}'""" in text
    assert f"""'tags={{"_text":"{NOTE_SEARCH_WORD}"}}'""" in text
    assert "Jaeger" in text and "URL:    http://127.0.0.1:4318" in text and "proxy" in text


def test_failure_text_names_the_ingest_path() -> None:
    text = failure_text(_result(searchable=False, failed_exports={"inventory": 3}), timeout=30)
    assert "http://127.0.0.1:4318/api/v2/spans" in text
