"""The polyglot demo end to end: one order crosses Python, Java and Node.js and comes back as one trace.

Real OpenTelemetry SDKs and agent (Python distro and setup(), the Java agent, the Node.js SDK), the real
service, Kafka and Elasticsearch: run_demo is what `make demo` runs. Then every hop is checked by the
parent of the span on its far side, and the trace's log lines by the logs endpoint and by Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from demo import logship
from demo.config import LOGS_INDEX, SERVICES, STOREFRONT
from demo.query import fetch_logs, service_of
from demo.traffic import DemoResult, run_demo
from devstack.errors import DevstackError
from tests.integration.conftest import Service

PYTHON_SERVICES = {"frontend", "checkout", "catalog", "payments"}


@pytest.fixture(scope="module")
def demo(service: Service, es_url: str, bootstrap: str) -> Iterator[DemoResult]:
    try:
        result = run_demo(service.url, es_url, bootstrap, 5, graph_wait=0, progress=False)
    except DevstackError as error:  # Java, Maven, Node.js or npm missing: said in the message
        pytest.skip(str(error))
    yield result
    # The demo's lines stay in the dev stack's logs index, like `make demo`'s; the test's are its own.
    query = {"query": {"terms": {"trace.id": list(result.trace_ids)}}}
    requests.post(f"{es_url}/{LOGS_INDEX}/_delete_by_query", params={"refresh": "true"}, json=query, timeout=60)


@pytest.fixture(scope="module")
def trace(demo: DemoResult, service: Service) -> dict[str, Any]:
    answer = service.get(f"/api/traces/{demo.showcase_trace_id}")
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()["data"][0]
    return found


def spans_of(trace: dict[str, Any], service_name: str, kind: str) -> list[dict[str, Any]]:
    processes = {key for key, value in trace["processes"].items() if value["serviceName"] == service_name}
    return [
        span
        for span in trace["spans"]
        if span["processID"] in processes
        and any(tag["key"] == "span.kind" and tag["value"] == kind for tag in span["tags"])
    ]


def parent_service(trace: dict[str, Any], span: dict[str, Any]) -> tuple[str, str]:
    """(service, span.kind) of the span's parent."""
    (ref,) = [ref for ref in span["references"] if ref["refType"] == "CHILD_OF"]
    (parent,) = [candidate for candidate in trace["spans"] if candidate["spanID"] == ref["spanID"]]
    kind = next(tag["value"] for tag in parent["tags"] if tag["key"] == "span.kind")
    return trace["processes"][parent["processID"]]["serviceName"], kind


def test_one_order_is_one_whole_trace_through_every_service(demo: DemoResult, trace: dict[str, Any]) -> None:
    assert demo.ok, demo
    assert demo.view.services == {STOREFRONT, *(spec.name for spec in SERVICES)}
    assert demo.view.orphans == 0 and demo.view.roots == 1
    assert {span["traceID"] for span in trace["spans"]} == {demo.showcase_trace_id}


@pytest.mark.parametrize(
    ("callee", "kind", "caller"),
    [
        ("frontend", "server", (STOREFRONT, "client")),  # uber-trace-id only
        ("checkout", "server", ("frontend", "client")),  # W3C, Python to Python
        ("inventory", "server", ("checkout", "client")),  # W3C, Python to Java
        ("inventory", "consumer", ("checkout", "producer")),  # W3C in a Kafka record, Python to Java
        ("recommendations", "server", ("inventory", "client")),  # B3 multi, Java to Node.js
        ("catalog", "server", ("recommendations", "client")),  # B3 multi only, Node.js back to Python
        ("payments", "server", ("checkout", "client")),
    ],
)
def test_each_hop_hangs_under_its_caller(
    trace: dict[str, Any], callee: str, kind: str, caller: tuple[str, str]
) -> None:
    spans = spans_of(trace, callee, kind)
    assert spans, f"no {kind} span of {callee}"
    assert {parent_service(trace, span) for span in spans} == {caller}


def test_the_traces_log_lines_come_back_from_every_language(demo: DemoResult, service: Service, es_url: str) -> None:
    lines = fetch_logs(service.url, demo.showcase_trace_id)
    assert PYTHON_SERVICES | {"inventory", "recommendations"} <= {service_of(line) for line in lines}
    for line in lines:
        flat = dotted(line)
        assert flat["trace.id"] == demo.showcase_trace_id
        assert len(flat["span.id"]) == 16 and flat["message"] and flat["log.level"] and flat["@timestamp"]
    # The same lines, straight from Elasticsearch by trace.id, as Kibana or Grafana's ES data source finds them.
    answer = requests.get(
        f"{es_url}/{LOGS_INDEX}/_count", params={"q": f"trace.id:{demo.showcase_trace_id}"}, timeout=30
    )
    assert answer.json()["count"] == len(lines) > 0
    assert sum(demo.logs_shipped.values()) >= len(lines)


def dotted(line: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """ECS lines come nested (Python's ecs-logging) or dotted (Java, Node.js): one dotted form."""
    flat: dict[str, Any] = {}
    for key, value in line.items():
        if isinstance(value, dict):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_shipper_uses_the_logs_index_the_service_reads() -> None:
    assert logship.TEMPLATE["index_patterns"] == [f"{LOGS_INDEX}*"]
