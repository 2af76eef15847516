"""Tenants kept apart through every read API (issue 13): the real service under gunicorn (2 workers, direct
mode) with a keys file made by the CLI and ``TRACESEARCH_TENANT_HEADER=true``.

Tenant A (a key bound to ``team-a``) and tenant B (``team-b``) each send a trace with the real OpenTelemetry
SDK exporter, every name and value of A's holding ``alpha`` and of B's ``bravo``. Each read API is then
called twice with the same parameters: A's answer must hold ``alpha`` (the query works and finds A's data,
so an empty answer for B means isolation, not a broken query) and B's must hold no trace of it.

The reads Grafana's Jaeger, Tempo and Zipkin data sources make (Zipkin's UI calls the same Zipkin views below
its base path; the UI is off here, it needs its downloaded files), the logs endpoint, sampling, alert rules
and ``/metrics``; each tenant has its own strategies and rules files (``TRACESEARCH_TENANTS_FILE``), set
through its own key's PUTs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service

HEADER = "X-Scope-OrgID"
PROTOBUF = "application/protobuf"
UNKNOWN_TRACE = "0123456789abcdef0123456789abcdef"
WAIT_S = 20.0  # the service graph's flush (1 s here) and the refresh, on a busy machine
STRATEGIES = "/api/v1/sampling/strategies"
RULES = "/api/v1/alerts/rules"



@dataclass
class Tenant:
    """One tenant's key and the names its trace carries (each holding ``word``)."""

    name: str
    word: str
    key: str
    trace_id: str = ""

    @property
    def web(self) -> str:
        return f"{self.word}-web"

    @property
    def db(self) -> str:
        return f"{self.word}-db"

    @property
    def tag(self) -> str:
        return f"{self.word}.secret"

    @property
    def value(self) -> str:
        return f"{self.word}-value-7"


@dataclass
class World:
    service: Service
    a: Tenant
    b: Tenant
    shared_key: str  # not bound to a tenant: the header names it

    def get(
        self, path: str, key: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}", **(headers or {})}
        return requests.get(f"{self.service.url}{path}", params=params, headers=headers, timeout=30)


def cli(keys_file: Path, *args: str) -> str:
    command = [sys.executable, "-m", "tracesearch", "auth", *args, "--file", str(keys_file)]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def send_trace(url: str, tenant: Tenant) -> str:
    """web (SERVER) → web (CLIENT, peer.service db) → db (SERVER, the secret tag), exported by the SDK's
    OTLP/HTTP exporter with the tenant's bearer key."""
    providers = {}
    for service in (tenant.web, tenant.db):
        resource = Resource.create({"service.name": service, f"{tenant.word}.team": f"{tenant.word}-owners"})
        provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {tenant.key}"})
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers[service] = provider
    web = providers[tenant.web].get_tracer(f"{tenant.word}.web")
    db = providers[tenant.db].get_tracer(f"{tenant.word}.db")
    with web.start_as_current_span(f"{tenant.word}-checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", f"/{tenant.word}/checkout")
        with web.start_as_current_span(f"{tenant.word}-call", kind=SpanKind.CLIENT) as client:
            client.set_attribute("peer.service", tenant.db)
            with db.start_as_current_span(f"{tenant.word}-select", kind=SpanKind.SERVER) as server:
                server.set_attribute(tenant.tag, tenant.value)
                time.sleep(0.01)
        trace_id = f"{root.get_span_context().trace_id:032x}"
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()
    return trace_id


def log_line(world: World, index: str, tenant: Tenant) -> None:
    line: dict[str, Any] = {
        "@timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),  # mapped as a date
        "trace": {"id": tenant.trace_id},
        "message": f"{tenant.word} log line",
    }
    url = f"{world.service.es_url}/{index}/_doc?refresh=true"
    requests.post(url, json=line, timeout=30).raise_for_status()


def configure(world: World, tenant: Tenant) -> None:
    """A sampling strategy and an alert rule of the tenant's own, through its own key (admin scope)."""
    strategies: dict[str, Any] = {
        "default_strategy": {"type": "probabilistic", "param": 1.0},
        "service_strategies": [
            {
                "service": tenant.web,
                "type": "probabilistic",
                "param": 0.5,
                "operation_strategies": [
                    {"operation": f"{tenant.word}-checkout", "type": "probabilistic", "param": 0.25}
                ],
            }
        ],
    }
    rules: dict[str, Any] = {
        "rules": [{"name": f"{tenant.word}-slow", "metric": "latency", "quantile": "p95", "threshold": 0.5}]
    }
    for path, document in ((STRATEGIES, strategies), (RULES, rules)):
        answer = requests.put(
            f"{world.service.url}{path}",
            json=document,
            headers={"Authorization": f"Bearer {tenant.key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def world(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("tenants")
    keys_file = folder / "keys.yaml"
    scopes = "ingest,read,admin"
    a = Tenant("team-a", "alpha", cli(keys_file, "add-key", "--id", "alpha", "--scopes", scopes, "--tenant", "team-a"))
    b = Tenant("team-b", "bravo", cli(keys_file, "add-key", "--id", "bravo", "--scopes", scopes, "--tenant", "team-b"))
    shared = cli(keys_file, "add-key", "--id", "shared", "--scopes", scopes)
    (folder / "strategies.json").write_text("{}")
    (folder / "rules.yaml").write_text("rules: []\n")
    overrides: dict[str, dict[str, str]] = {}
    for tenant in (a, b):  # each its own strategies and rules files (written through its own PUTs below)
        (folder / f"{tenant.name}-strategies.json").write_text("{}")
        (folder / f"{tenant.name}-rules.yaml").write_text("rules: []\n")
        overrides[tenant.name] = {
            "TRACESEARCH_SAMPLING_STRATEGIES_FILE": str(folder / f"{tenant.name}-strategies.json"),
            "TRACESEARCH_ALERTS_RULES_FILE": str(folder / f"{tenant.name}-rules.yaml"),
        }
    (folder / "tenants.yaml").write_text(json.dumps({"tenants": overrides}))
    prefix = f"it-ten-{uuid.uuid4().hex[:8]}"
    env = {
        "TRACESEARCH_AUTH_KEYS_FILE": str(keys_file),
        "TRACESEARCH_TENANT_HEADER": "true",
        "TRACESEARCH_SERVICEGRAPH_WAIT": "1s",
        "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL": "1s",
        "TRACESEARCH_LOGS_INDEX": f"{prefix}-logs-*",
        "TRACESEARCH_SAMPLING_STRATEGIES_FILE": str(folder / "strategies.json"),
        "TRACESEARCH_SAMPLING_RELOAD_INTERVAL": "1s",
        "TRACESEARCH_ALERTS_RULES_FILE": str(folder / "rules.yaml"),
        "TRACESEARCH_ALERTS_RELOAD_INTERVAL": "1s",
        "TRACESEARCH_TENANTS_FILE": str(folder / "tenants.yaml"),
    }
    running = start_service(es_url, prefix, folder, env)
    running.wait_for_workers(2)
    made = World(running, a, b, shared)
    try:
        for tenant in (b, a):  # A last: what a shared store keeps last is A's (a leak shows)
            tenant.trace_id = send_trace(running.url, tenant)
            log_line(made, f"{prefix}-logs-app", tenant)
            configure(made, tenant)
        running.refresh()
        yield made
    finally:
        stop_service(running)
        drop_prefix(es_url, prefix)


# ------------------------------------------------------------------------------------------- the reads

Request = tuple[str, dict[str, str], dict[str, str]]  # path, query parameters, headers


def _tempo_window() -> dict[str, str]:
    now = int(time.time())
    return {"start": str(now - 3600), "end": str(now + 60)}


def _zipkin_window() -> dict[str, str]:
    return {"endTs": str(int(time.time() * 1000) + 60_000), "lookback": "3600000"}


# Each read, made with the reader's key and the parameters naming A's data (``t``: tenant A).
READS: dict[str, Callable[[Tenant], Request]] = {
    "jaeger services": lambda t: ("/api/services", {}, {}),
    "jaeger service operations": lambda t: (f"/api/services/{t.web}/operations", {}, {}),
    "jaeger operations": lambda t: ("/api/operations", {"service": t.web}, {}),
    "jaeger search by service": lambda t: ("/api/traces", {"service": t.web}, {}),
    "jaeger search by tags": lambda t: (
        "/api/traces",
        {"service": t.db, "tags": json.dumps({t.tag: t.value})},
        {},
    ),
    "jaeger trace by id": lambda t: (f"/api/traces/{t.trace_id}", {}, {}),
    "jaeger dependencies": lambda t: (
        "/api/dependencies",
        {"endTs": str(int(time.time() * 1000) + 60_000), "lookback": "3600000"},
        {},
    ),
    "tempo search by tags": lambda t: ("/api/search", {"tags": f"{t.tag}={t.value}", **_tempo_window()}, {}),
    "tempo search by traceql": lambda t: (
        "/api/search",
        {"q": f'{{ span.{t.tag} = "{t.value}" }}', **_tempo_window()},
        {},
    ),
    "tempo tags v1": lambda t: ("/api/search/tags", _tempo_window(), {}),
    "tempo tags v2": lambda t: ("/api/v2/search/tags", _tempo_window(), {}),
    "tempo tags v2 scoped": lambda t: ("/api/v2/search/tags", {"scope": "resource", **_tempo_window()}, {}),
    "tempo tag values v1": lambda t: ("/api/search/tag/service.name/values", _tempo_window(), {}),
    "tempo tag values v2": lambda t: ("/api/v2/search/tag/span.http.route/values", _tempo_window(), {}),
    "tempo tag values v2 scoped": lambda t: (
        "/api/v2/search/tag/resource.service.name/values",
        _tempo_window(),
        {},
    ),
    "tempo trace by id v1 protobuf": lambda t: (f"/api/traces/{t.trace_id}", {}, {"Accept": PROTOBUF}),
    "tempo trace by id v2": lambda t: (f"/api/v2/traces/{t.trace_id}", {}, {}),
    "tempo metrics query_range": lambda t: (
        "/api/metrics/query_range",
        {"q": "{ } | rate() by (resource.service.name)", "step": "60s", **_tempo_window()},
        {},
    ),
    "tempo metrics instant": lambda t: (
        "/api/metrics/query",
        {"q": "{ } | rate() by (resource.service.name)", **_tempo_window()},
        {},
    ),
    "zipkin services": lambda t: ("/api/v2/services", {}, {}),
    "zipkin spans": lambda t: ("/api/v2/spans", {"serviceName": t.web}, {}),
    "zipkin remote services": lambda t: ("/api/v2/remoteServices", {"serviceName": t.web}, {}),
    "zipkin traces by service": lambda t: ("/api/v2/traces", {"serviceName": t.web}, {}),
    "zipkin traces by tag": lambda t: ("/api/v2/traces", {"annotationQuery": f"{t.tag}={t.value}"}, {}),
    "zipkin trace by id": lambda t: (f"/api/v2/trace/{t.trace_id}", {}, {}),
    "zipkin trace many": lambda t: ("/api/v2/traceMany", {"traceIds": t.trace_id}, {}),
    "zipkin dependencies": lambda t: ("/api/v2/dependencies", _zipkin_window(), {}),
    "zipkin autocomplete keys": lambda t: ("/api/v2/autocompleteKeys", {}, {}),
    "zipkin autocomplete values": lambda t: ("/api/v2/autocompleteValues", {"key": t.tag}, {}),
    "trace logs": lambda t: (f"/api/v1/traces/{t.trace_id}/logs", {}, {}),
    "sampling strategy": lambda t: ("/api/sampling", {"service": t.web}, {}),
    "sampling strategies file": lambda t: (STRATEGIES, {}, {}),
    "alert rules": lambda t: (RULES, {}, {}),
    "metrics": lambda t: ("/metrics", {}, {}),
}

def read(world: World, name: str, reader: Tenant) -> requests.Response:
    path, params, headers = READS[name](world.a)
    return world.get(path, reader.key, params, headers)


def a_answer(world: World, name: str) -> requests.Response:
    """A's answer once it holds A's data: the service graph and span metrics come with a flush."""
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = read(world, name, world.a)
        assert answer.status_code == 200, f"{name}: {answer.status_code} {answer.text[:300]}"
        if world.a.word.encode() in answer.content or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)
        world.service.refresh()


@pytest.mark.parametrize("name", list(READS))
def test_a_sees_its_own_data(world: World, name: str) -> None:
    answer = a_answer(world, name)
    assert world.a.word.encode() in answer.content, f"{name}: A's own data missing: {answer.text[:500]}"
    assert world.b.word.encode() not in answer.content, f"{name}: A sees B's data: {answer.text[:500]}"


@pytest.mark.parametrize("name", list(READS))
def test_b_sees_nothing_of_a(world: World, name: str) -> None:
    a_answer(world, name)  # A's data is there to be seen (and flushed) before B looks
    answer = read(world, name, world.b)
    assert answer.status_code in (200, 404), f"{name}: {answer.status_code} {answer.text[:300]}"
    # A 404 names the id asked for (test_guessing_a_trace_id_... compares it with an unknown id's).
    leaked = world.a.word.encode() in answer.content or (
        answer.status_code == 200 and world.a.trace_id.encode() in answer.content
    )
    if name == "trace logs":  # its answer names the id asked for: what must be empty is the lines
        leaked = answer.status_code != 200 or bool(answer.json()["logs"])
    assert not leaked, f"{name}: B sees A's data: {answer.text[:500]}"


def test_metrics_label_a_tenant_s_series(world: World) -> None:
    text = a_answer(world, "metrics").text
    series = [line for line in text.splitlines() if world.a.web in line and not line.startswith("#")]
    assert series and all('tenant="team-a"' in line for line in series), series[:5]


# ------------------------------------------------------------------------------- guessing a trace id

BY_ID = [
    "jaeger trace by id",
    "tempo trace by id v1 protobuf",
    "tempo trace by id v2",
    "zipkin trace by id",
    "zipkin trace many",
    "trace logs",
]


@pytest.mark.parametrize("name", BY_ID)
def test_guessing_a_trace_id_answers_as_for_an_unknown_one(world: World, name: str) -> None:
    assert world.a.trace_id.encode() in a_answer(world, name).content or name == "tempo trace by id v1 protobuf"
    guessed = read(world, name, world.b)
    path, params, headers = READS[name](Tenant("", "", "", UNKNOWN_TRACE))
    unknown = world.get(path, world.b.key, params, headers)
    assert guessed.status_code == unknown.status_code, f"{name}: {guessed.status_code} vs {unknown.status_code}"
    if name == "trace logs":  # the window it would have searched is the lookback up to now: not compared
        mine, other = guessed.json(), unknown.json()
        assert {k: v for k, v in mine.items() if k not in ("traceId", "start", "end")} == {
            k: v for k, v in other.items() if k not in ("traceId", "start", "end")
        }
        assert mine["logs"] == [] and mine["window"] == "lookback"
        return
    assert guessed.content.replace(world.a.trace_id.encode(), b"ID") == unknown.content.replace(
        UNKNOWN_TRACE.encode(), b"ID"
    ), name


# ------------------------------------------------------------------------------------- the header


def test_an_unbound_key_reads_the_tenant_its_header_names(world: World) -> None:
    path = f"/api/traces/{world.a.trace_id}"
    as_a = world.get(path, world.shared_key, headers={HEADER: world.a.name})
    assert as_a.status_code == 200 and len(as_a.json()["data"][0]["spans"]) == 3, as_a.text[:300]
    as_b = world.get(path, world.shared_key, headers={HEADER: world.b.name})
    assert as_b.status_code == 404, as_b.text[:300]
    as_default = world.get(path, world.shared_key)
    assert as_default.status_code == 404, as_default.text[:300]
    services = world.get("/api/v2/services", world.shared_key, headers={HEADER: world.a.name}).json()
    assert world.a.web in services and world.b.web not in services


def _jaeger(body: Any, status: int) -> bool:
    return bool(body["errors"][0]["code"] == status and "tenant" in body["errors"][0]["msg"])


def _tempo(body: Any, status: int) -> bool:
    return bool(body["error"]["code"] == status and body["error"]["field"] == HEADER)


def _json(body: Any, status: int) -> bool:
    return bool(body["error"]["code"] == status and body["error"]["field"] == HEADER)


def _otlp(body: Any, status: int) -> bool:
    return bool(body["code"] == {400: 3, 403: 7}[status])  # google.rpc.Code INVALID_ARGUMENT, PERMISSION_DENIED


# One request of each surface, and the check of its error format.
SURFACES: dict[str, tuple[str, str, Callable[[Any, int], bool]]] = {
    "otlp ingest": ("POST", "/v1/traces", _otlp),
    "zipkin ingest": ("POST", "/api/v2/spans", _json),
    "jaeger": ("GET", "/api/services", _jaeger),
    "tempo": ("GET", "/api/v2/search/tags", _tempo),
    "zipkin": ("GET", "/api/v2/services", _json),
    "trace logs": ("GET", f"/api/v1/traces/{UNKNOWN_TRACE}/logs", _json),
    "sampling": ("GET", "/api/sampling?service=x", _json),
    "alerts": ("GET", RULES, _json),
}


def _refused(world: World, surface: str, key: str, tenant: str, status: int) -> None:
    method, path, shaped = SURFACES[surface]
    headers = {"Authorization": f"Bearer {key}", HEADER: tenant}
    if method == "POST":  # an empty batch: the refusal comes before the body is read
        headers["Content-Type"] = "application/json"
    answer = requests.request(
        method, f"{world.service.url}{path}", data=b"[]" if method == "POST" else None, headers=headers, timeout=30
    )
    assert answer.status_code == status, f"{surface}: {answer.status_code} {answer.text[:300]}"
    assert shaped(answer.json(), status), f"{surface}: {answer.text[:300]}"


@pytest.mark.parametrize("surface", list(SURFACES))
def test_a_bound_key_naming_another_tenant_is_403(world: World, surface: str) -> None:
    _refused(world, surface, world.b.key, world.a.name, 403)


@pytest.mark.parametrize("surface", list(SURFACES))
def test_an_invalid_tenant_header_is_400(world: World, surface: str) -> None:
    _refused(world, surface, world.shared_key, "Team.A", 400)
