"""Authentication end to end: the real service under gunicorn with a keys file made by the CLI, the real
OpenTelemetry OTLP/HTTP exporter with a bearer header and the real Zipkin exporter with basic auth."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter

from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tests.integration.otel_traces import three_service_trace

RELOAD_S = 1.0


@dataclass
class Secured:
    service: Service
    keys_file: Path
    keys: dict[str, str]

    def get(self, path: str, key: str | None = None, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.get(f"{self.service.url}{path}", params=params, headers=headers, timeout=30)


def cli(keys_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tracesearch", "auth", *args, "--file", str(keys_file)]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)


@pytest.fixture(scope="module")
def secured(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    folder = tmp_path_factory.mktemp("auth")
    keys_file = folder / "keys.yaml"
    keys = {}
    for key_id, scopes in (("reader", "read"), ("sender", "ingest"), ("zipkin", "ingest"), ("doomed", "ingest,read")):
        made = cli(keys_file, "add-key", "--id", key_id, "--scopes", scopes, "--tenant", "team-a")
        keys[key_id] = made.stdout.strip()
        assert keys[key_id].startswith(f"tsk_{key_id}_") and keys[key_id] not in keys_file.read_text()
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    env = {"TRACESEARCH_AUTH_KEYS_FILE": str(keys_file), "TRACESEARCH_AUTH_RELOAD_INTERVAL": f"{RELOAD_S}s"}
    running = start_service(es_url, prefix, folder, env)
    running.wait_for_workers(2)
    yield Secured(running, keys_file, keys)
    log = running.log_tail()
    stop_service(running)
    drop_prefix(es_url, prefix)
    assert not any(key in log for key in keys.values()), "a key reached the service's log"


def stored_spans(secured: Secured, trace_id: str) -> int:
    secured.service.refresh()
    answer = secured.get(f"/api/traces/{trace_id}", secured.keys["reader"])
    assert answer.status_code == 200, answer.text
    return sum(len(trace["spans"]) for trace in answer.json()["data"])


def test_the_otlp_exporter_with_a_bearer_header_gets_its_spans_stored(
    secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The variable every OpenTelemetry SDK reads (the value URL-encoded, as the spec says).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{secured.keys['sender']}")
    trace = three_service_trace(lambda: OTLPSpanExporter(endpoint=f"{secured.service.url}/v1/traces"), "auth-otlp")
    assert stored_spans(secured, trace.trace_id) == len(trace.spans) > 0


def test_the_zipkin_exporter_with_basic_auth_gets_its_spans_stored(secured: Secured) -> None:
    # Credentials in the URL: requests (the exporter's client) sends them as basic auth.
    host = secured.service.url.removeprefix("http://")
    url = f"http://zipkin:{secured.keys['zipkin']}@{host}/api/v2/spans"
    trace = three_service_trace(lambda: ZipkinExporter(endpoint=url), "auth-zipkin")
    assert stored_spans(secured, trace.trace_id) == len(trace.spans) > 0


def test_no_key_is_401_with_challenges_and_wrong_scopes_are_403(secured: Secured) -> None:
    anonymous = secured.get("/api/search")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == 401
    challenges = anonymous.headers["WWW-Authenticate"]  # requests joins the two header lines
    assert 'Bearer realm="tracesearch"' in challenges and 'Basic realm="tracesearch"' in challenges
    ingest_reads = secured.get("/api/v2/services", secured.keys["sender"])
    assert ingest_reads.status_code == 403 and "read" in ingest_reads.json()["error"]["message"]
    read_ingests = requests.post(
        f"{secured.service.url}/v1/traces",
        data=b"{}",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secured.keys['reader']}"},
        timeout=30,
    )
    assert read_ingests.status_code == 403 and read_ingests.json()["code"] == 7  # PERMISSION_DENIED
    assert secured.get("/metrics").status_code == 200  # open by default
    assert secured.get("/api/services", secured.keys["reader"]).status_code == 200


def test_a_revoked_key_stops_working_within_the_reload_interval(secured: Secured) -> None:
    doomed = secured.keys["doomed"]
    for _ in range(6):  # both workers verified it (each has its own cache)
        assert secured.get("/api/services", doomed).status_code == 200
    cli(secured.keys_file, "revoke", "doomed")
    revoked_at = time.monotonic()
    while True:
        statuses = {secured.get("/api/services", doomed).status_code for _ in range(6)}
        if statuses == {401}:
            break
        assert time.monotonic() - revoked_at < RELOAD_S + 2.0, statuses
        time.sleep(0.1)
    assert time.monotonic() - revoked_at <= RELOAD_S + 1.0
    assert secured.get("/api/services", secured.keys["reader"]).status_code == 200
