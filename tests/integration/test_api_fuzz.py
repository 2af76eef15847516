"""schemathesis over the whole API: every operation of the running service's own ``/openapi.json`` is
called with generated parameters and bodies (valid ones and, for a share, invalid ones), and every answer
must be no 5xx, a status the document lists for that operation, in a content type it lists, with a body
and headers that match the documented schema.

The service is the real one (gunicorn on the shared Elasticsearch), seeded first with a few traces so
reads find data: the document fetched for the test gets examples naming the seeded trace ids, services and
tags (the served document is not changed), which the examples phase sends before the generated cases.

Bounded and reproducible: the hypothesis profile of tests/conftest.py ("ci": 25 cases per operation,
half valid and half not, derandomized so every run sends the same, no deadline).

With authentication and tenants on (issue 13): the service here has a keys file and
``TRACESEARCH_TENANT_HEADER=true``; every call sends a key of every scope bound to the tenant ``TENANT``
(so the seeded data and every read are that tenant's indices), every other one ``X-Scope-OrgID: TENANT``
too, and the generated cases fill the documented ``X-Scope-OrgID`` parameter with anything, which the
document says is answered 403 (another tenant, for a bound key) or 400.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.unit.codecs.strategies import mutated, spans
from tracesearch import tenancy
from tracesearch.app import create_app
from tracesearch.auth.keys import KeyRecord, hash_key, new_key
from tracesearch.auth.store import add_key
from tracesearch.codecs import otlp_json, zipkin_json
from tracesearch.model import Span
from tracesearch.settings import Settings

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]
METHODS = {"get", "put", "post", "delete", "patch"}
SERVICE = "fuzz-frontend"
ZIPKIN_SERVICE = "fuzz-zipkin"
TRACE_IDS = ("f0220000000000000000000000000001", "f0220000000000000000000000000002")
ZIPKIN_TRACE = "00000000000000000000000000f02203"


TENANT = "fuzz-team"
KEY = new_key("fuzz")  # every scope, bound to TENANT
_calls = itertools.count()


def request_headers(with_tenant: bool = True) -> dict[str, str]:
    """Headers a fuzzed request sends: the key, and the tenant header when ``with_tenant``."""
    headers = {"Authorization": f"Bearer {KEY}"}
    return {**headers, tenancy.HEADER: TENANT} if with_tenant else headers


def _alternating_headers() -> dict[str, str]:
    """Every other call without X-Scope-OrgID (the key's tenant alone), the generated one then going out."""
    return request_headers(with_tenant=next(_calls) % 2 == 0)


@pytest.fixture(scope="module")
def service(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service with API keys and the tenant header on (this module's own, not the session's)."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    keys_file = folder / "keys.yaml"
    add_key(str(keys_file), KeyRecord("fuzz", hash_key(KEY), frozenset({"ingest", "read", "admin"}), TENANT))
    prefix = f"it-fuzz-{uuid.uuid4().hex[:8]}"
    env = {"TRACESEARCH_AUTH_KEYS_FILE": str(keys_file), "TRACESEARCH_TENANT_HEADER": "true"}
    running = start_service(es_url, prefix, folder, env)
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


def _otlp_trace(trace_id: str, now_ns: int) -> dict[str, Any]:
    root = {
        "traceId": trace_id,
        "spanId": trace_id[-16:],
        "name": "GET /checkout",
        "kind": 2,
        "startTimeUnixNano": str(now_ns - 2_000_000_000),
        "endTimeUnixNano": str(now_ns - 1_000_000_000),
        "attributes": [
            {"key": "http.method", "value": {"stringValue": "GET"}},
            {"key": "http.status_code", "value": {"intValue": "200"}},
        ],
        "events": [{"timeUnixNano": str(now_ns - 1_500_000_000), "name": "cache miss"}],
        "status": {"code": 1},
    }
    child = {
        "traceId": trace_id,
        "spanId": "c" + trace_id[-15:],
        "parentSpanId": trace_id[-16:],
        "name": "SELECT orders",
        "kind": 3,
        "startTimeUnixNano": str(now_ns - 1_900_000_000),
        "endTimeUnixNano": str(now_ns - 1_200_000_000),
        "attributes": [
            {"key": "db.system", "value": {"stringValue": "postgresql"}},
            {"key": "peer.service", "value": {"stringValue": "postgres"}},
        ],
        "status": {"code": 2, "message": "timeout"},
    }
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": SERVICE}}]},
                "scopeSpans": [{"scope": {"name": "fuzz", "version": "1"}, "spans": [root, child]}],
            }
        ]
    }


def _seed(service: Service) -> None:
    now_ns = time.time_ns()
    for trace_id in TRACE_IDS:
        answer = requests.post(
            f"{service.url}/v1/traces", json=_otlp_trace(trace_id, now_ns), headers=request_headers(), timeout=30
        )
        assert answer.status_code == 200, answer.text
    zipkin: list[dict[str, Any]] = [
        {
            "traceId": ZIPKIN_TRACE,
            "id": "00000000000f0221",
            "name": "post /pay",
            "kind": "SERVER",
            "timestamp": now_ns // 1000 - 3_000_000,
            "duration": 150_000,
            "localEndpoint": {"serviceName": ZIPKIN_SERVICE, "ipv4": "10.0.0.1"},
            "remoteEndpoint": {"serviceName": "bank", "port": 443},
            "tags": {"http.path": "/pay"},
            "annotations": [{"timestamp": now_ns // 1000 - 2_950_000, "value": "wr"}],
        }
    ]
    answer = requests.post(f"{service.url}/api/v2/spans", json=zipkin, headers=request_headers(), timeout=30)
    assert answer.status_code == 202, answer.text
    service.refresh()


# Examples the seeded data answers, by parameter name (path and query alike).
EXAMPLES: dict[str, str] = {
    "trace_id": TRACE_IDS[0],
    "service": SERVICE,
    "serviceName": ZIPKIN_SERVICE,
    "tag": "http.method",
    "key": "http.path",
    "traceIds": f"{TRACE_IDS[0]},{ZIPKIN_TRACE}",
    "q": '{ resource.service.name = "fuzz-frontend" }',
}


def _with_examples(document: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(document)
    for path, item in out["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                example = EXAMPLES.get(parameter["name"])
                if parameter["name"] == "q" and "/metrics/" in path:
                    example = '{ resource.service.name = "fuzz-frontend" } | rate()'
                if example is not None and parameter["schema"].get("type") == "string":
                    parameter["example"] = example
            del method
    return out


def _documented_operations() -> list[tuple[str, str]]:
    """(path, method) of every operation, from the document the app serves, built in-process at
    collection (the routes do not depend on the settings the running service has)."""
    app = create_app(Settings(index_prefix="fuzz-collect", install_templates=False, servicegraph_enabled=False))
    document = app.test_client().get("/openapi.json").json
    assert document is not None
    return [(path, method) for path, item in document["paths"].items() for method in item if method in METHODS]


@pytest.fixture(scope="module")
def api_schema(service: Service) -> Any:
    _seed(service)
    document = requests.get(f"{service.url}/openapi.json", headers=request_headers(), timeout=30).json()
    config = SchemathesisConfig.from_dict({"base-url": service.url, "headers": request_headers(with_tenant=False)})
    return schemathesis.openapi.from_dict(_with_examples(document), config=config)


# gunicorn answers a request line or headers over its limits (limit_request_line, 4094 bytes) itself, in
# HTML, before the app sees the request: not an answer of the API's, so not in its document.
GUNICORN_LIMITS = {414, 431}


def _validate(case: Any) -> None:
    response = case.call(headers=_alternating_headers(), timeout=30)
    if response.status_code in GUNICORN_LIMITS and "text/html" in response.headers.get("Content-Type", ""):
        return
    case.validate_response(response, checks=CHECKS)


# schemathesis's own pytest integration (schema.parametrize over a fixture) does not run on pytest 9.2
# (it renames nodes through a private attribute pytest no longer has): each operation is a test item of
# its own here, fuzzed through schemathesis's strategies, which is all the integration added.
@pytest.mark.parametrize(("path", "method"), _documented_operations(), ids=lambda value: str(value))
def test_api_answers_match_the_document(api_schema: Any, path: str, method: str) -> None:
    operation = api_schema[path][method]
    seeded = {p.name: p.definition["example"] for p in operation.path_parameters if "example" in p.definition}
    # The seeded data first: a valid request that finds something.
    query = {p.name: p.definition["example"] for p in operation.query if "example" in p.definition}
    if len(seeded) == len(list(operation.path_parameters)):
        _validate(operation.Case(path_parameters=seeded, query=query))

    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    # The profile's bound and seed (tests/conftest.py), without shrinking: a failure is reported as found.
    @given(case=cases)
    @settings(suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def fuzz(case: Any) -> None:
        _validate(case)

    fuzz()


def _recent_spans() -> st.SearchStrategy[list[Span]]:
    """Valid spans of the last hour (a random day would create a daily index in the shared Elasticsearch)."""
    now = time.time_ns()
    recent = st.integers(min_value=now - 3_600_000_000_000, max_value=now)
    return st.lists(spans(times=recent).filter(lambda span: span.end_ns < now + 60_000_000_000), max_size=3)


INGEST: dict[str, Callable[[list[Span]], Any]] = {
    "/v1/traces": otlp_json.encode_traces_json,
    "/api/v2/spans": zipkin_json.encode_spans,
}


@pytest.mark.parametrize("path", sorted(INGEST))
def test_ingest_json_bodies(api_schema: Any, path: str) -> None:
    """The documented body of the ingest endpoints is bytes (protobuf or JSON), which the generic cases
    above fill with random bytes; here the JSON is the protocol's own: valid documents of valid spans,
    and the same with one part replaced by any JSON value. Never a 5xx (no outage here), always a
    documented status and body."""
    operation = api_schema[path]["post"]
    recent = _recent_spans()  # once: a strategy must not change between the cases of one test

    @given(st.data())
    @settings(suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def fuzz(data: st.DataObject) -> None:
        doc = INGEST[path](data.draw(recent))
        if data.draw(st.booleans()):
            doc = data.draw(mutated(doc))
        body = json.dumps(doc).encode()
        response = requests.post(
            f"{api_schema.get_base_url()}{path}",
            data=body,
            headers={**_alternating_headers(), "Content-Type": "application/json"},
            timeout=30,
        )
        case = operation.Case(body=body, media_type="application/json")
        case.validate_response(response, checks=CHECKS)

    fuzz()


def test_the_seeded_data_is_found(service: Service, api_schema: Any) -> None:
    """The seed took: the examples above reach stored traces (else the fuzz only ever reads empty answers)."""
    answer = requests.get(f"{service.url}/api/traces/{TRACE_IDS[0]}", headers=request_headers(), timeout=30)
    assert answer.status_code == 200 and len(answer.json()["data"][0]["spans"]) == 2
    answer = requests.get(f"{service.url}/api/v2/trace/{ZIPKIN_TRACE}", headers=request_headers(), timeout=30)
    assert answer.status_code == 200 and json.loads(answer.text)[0]["localEndpoint"]["serviceName"] == ZIPKIN_SERVICE
    # In the key's tenant's indices, none in the default tenant's.
    base = tenancy.index_prefix(service.prefix, TENANT)
    count = requests.get(f"{service.es_url}/{base}-span-*/_count", timeout=30).json()["count"]
    assert count >= 3, count
    assert requests.get(f"{service.es_url}/{service.prefix}-span-*/_count", timeout=30).json()["count"] == 0
