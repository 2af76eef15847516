"""Integration fixtures: the real Elasticsearch of the dev stack and the real service under gunicorn.

Each test session writes to its own index prefix, removed at the end.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import launch
from tracesearch.codecs.otlp_proto import encode_export_request
from tracesearch.model import Span

REPO = Path(__file__).resolve().parents[2]
# Below production's defaults (5 s, 3 retries): a test sees a failed write and its Retry-After quickly.
SERVICE_SETTINGS = {"TRACESEARCH_RETRY_AFTER_SECONDS": "2", "TRACESEARCH_BULK_RETRIES": "1"}
SERVICE_STOP_TIMEOUT_S = 20.0


@dataclass
class Service:
    running: launch.ServiceProcess
    es_url: str
    prefix: str

    @property
    def url(self) -> str:
        return self.running.url

    def refresh(self) -> None:
        """Make everything written so far searchable now instead of after the refresh interval."""
        requests.post(f"{self.es_url}/{self.prefix}-*,{self.prefix}.*/_refresh", timeout=30).raise_for_status()

    def count(self, query: dict[str, Any] | None = None) -> int:
        self.refresh()
        body = {"query": query} if query else None
        answer = requests.post(f"{self.es_url}/{self.prefix}-span-*/_count", json=body, timeout=30)
        answer.raise_for_status()
        return int(answer.json()["count"])

    def get(self, path: str, **params: str | int) -> requests.Response:
        return requests.get(f"{self.url}{path}", params=params, timeout=30)

    def post_spans(self, spans: Sequence[Span], per_request: int) -> None:
        """OTLP/protobuf, one request per chunk, each on its own connection, four at once (so the workers
        share them); every answer must be 200."""
        chunks = [spans[i : i + per_request] for i in range(0, len(spans), per_request)]

        def post(chunk: Sequence[Span]) -> int:
            answer = requests.post(
                f"{self.url}/v1/traces",
                data=encode_export_request(chunk),
                headers={"Content-Type": "application/x-protobuf", "Connection": "close"},
                timeout=30,
            )
            return answer.status_code

        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(post, chunks)) == {200}

    def wait_for_workers(self, count: int, timeout_s: float = launch.WORKERS_READY_TIMEOUT_S) -> None:
        self.running.wait_for_workers(count, timeout_s)

    def log_tail(self) -> str:
        return self.running.log_tail()

    def stop(self, timeout_s: float = launch.STOP_TIMEOUT_S) -> None:
        self.running.stop(timeout=timeout_s)


@pytest.fixture(scope="session")
def es_url() -> str:
    if os.environ.get("TRACESEARCH_ES_URL"):
        return os.environ["TRACESEARCH_ES_URL"].rstrip("/")
    sys.path.insert(0, str(REPO))
    from devstack import elasticsearch

    return elasticsearch.ensure_running().rstrip("/")


@pytest.fixture(scope="module")
def bootstrap() -> str:
    """Kafka: TRACESEARCH_KAFKA_BOOTSTRAP's, or the dev stack's, started if a test before stopped it."""
    if os.environ.get("TRACESEARCH_KAFKA_BOOTSTRAP"):
        return os.environ["TRACESEARCH_KAFKA_BOOTSTRAP"]
    sys.path.insert(0, str(REPO))
    from devstack import kafka

    return kafka.ensure_running()


def start_service(es_url: str, prefix: str, tmp: Path, extra_env: dict[str, str] | None = None) -> Service:
    env = launch.app_env(es_url, prefix=prefix, settings={**SERVICE_SETTINGS, **(extra_env or {})})
    return Service(launch.start_service(env, tmp), es_url, prefix)


def stop_service(service: Service) -> None:
    service.stop(SERVICE_STOP_TIMEOUT_S)


def drop_prefix(es_url: str, prefix: str) -> None:
    """Every index and template of the prefix, its tenants' (``<prefix>.<tenant>.-…``) too."""
    requests.delete(f"{es_url}/{prefix}-*,{prefix}.*", timeout=60)
    for kind in ("_index_template", "_component_template"):
        requests.delete(f"{es_url}/{kind}/{prefix}-*,{prefix}.*", timeout=60)


@pytest.fixture(scope="session")
def service(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("service"))
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


SAMPLING_RELOAD_S = 1.0  # TRACESEARCH_SAMPLING_RELOAD_INTERVAL of sampled_service


@pytest.fixture(scope="module")
def sampled_service(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    """A service serving the strategies file it returns (reloaded every SAMPLING_RELOAD_S), for remote samplers."""
    folder = tmp_path_factory.mktemp("sampling")
    path = folder / "strategies.json"
    path.write_text("{}")
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    env = {
        "TRACESEARCH_SAMPLING_STRATEGIES_FILE": str(path),
        "TRACESEARCH_SAMPLING_RELOAD_INTERVAL": f"{SAMPLING_RELOAD_S}s",
    }
    running = start_service(es_url, prefix, folder, env)
    running.wait_for_workers(2)
    yield running, path
    stop_service(running)
    drop_prefix(es_url, prefix)


@pytest.fixture(scope="session")
def lens_assets() -> Path:
    """The folder of Zipkin's UI (Lens) for TRACESEARCH_UI_DIR, from the dev stack's cache
    (.devstack/downloads/): the first run downloads zipkin-server's exec jar (135 MB) with mvn, checks its
    pinned SHA-256 and keeps Lens's 2.6 MB of files."""
    from devstack import lens

    return lens.ensure_assets()


def stop_elasticsearch(es_url: str) -> None:
    """Stop the dev stack's Elasticsearch and make sure it is really down (a test that believes in an
    outage that did not happen would pass for nothing)."""
    from devstack import elasticsearch

    elasticsearch.stop()
    try:
        requests.get(f"{es_url}/_cluster/health", timeout=2)
    except requests.ConnectionError:
        return
    pytest.fail(f"Elasticsearch at {es_url} still answers after stop(): not the dev stack's own?")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
