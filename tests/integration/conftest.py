"""Integration fixtures: the real Elasticsearch of the dev stack and the real service under gunicorn.

Each test session writes to its own index prefix, removed at the end.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devstack.process import dies_with_parent

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    url: str
    es_url: str
    prefix: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def refresh(self) -> None:
        """Make everything written so far searchable now instead of after the refresh interval."""
        requests.post(f"{self.es_url}/{self.prefix}-*/_refresh", timeout=30).raise_for_status()

    def count(self, query: dict | None = None) -> int:
        self.refresh()
        body = {"query": query} if query else None
        answer = requests.post(f"{self.es_url}/{self.prefix}-span-*/_count", json=body, timeout=30)
        answer.raise_for_status()
        return int(answer.json()["count"])

    def get(self, path: str, **params):
        return requests.get(f"{self.url}{path}", params=params, timeout=30)

    def wait_for_workers(self, count: int, timeout_s: float = 60) -> None:
        """Until ``count`` gunicorn workers have loaded the app (on a busy machine one can lag seconds
        behind the first, which then takes every request)."""
        deadline = time.monotonic() + timeout_s
        while len(set(re.findall(r"worker (\d+) ready", self.log_tail_all()))) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} workers ready:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail_all(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def log_tail(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def es_url() -> str:
    if os.environ.get("TRACESEARCH_ES_URL"):
        return os.environ["TRACESEARCH_ES_URL"].rstrip("/")
    sys.path.insert(0, str(REPO))
    from devstack import elasticsearch

    return elasticsearch.ensure_running().rstrip("/")


def start_service(es_url: str, prefix: str, tmp: Path, extra_env: dict[str, str] | None = None) -> Service:
    port = free_port()
    env = {
        **os.environ,
        "TRACESEARCH_ES_URL": es_url,
        "TRACESEARCH_INDEX_PREFIX": prefix,
        "TRACESEARCH_PORT": str(port),
        "TRACESEARCH_RETRY_AFTER_SECONDS": "2",
        "TRACESEARCH_BULK_RETRIES": "1",
        **(extra_env or {}),
    }
    log_path = tmp / f"service-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "app:app"],
        cwd=REPO,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=dies_with_parent,
    )
    service = Service(f"http://127.0.0.1:{port}", es_url, prefix, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{service.url}/health", timeout=5).status_code == 200:
                return service
        except requests.RequestException:
            pass  # not listening yet, or still booting its workers on a busy machine
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"service did not start:\n{service.log_tail()}")


def stop_service(service: Service) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        service.process.kill()


def drop_prefix(es_url: str, prefix: str) -> None:
    requests.delete(f"{es_url}/{prefix}-*", timeout=60)
    for kind in ("_index_template", "_component_template"):
        requests.delete(f"{es_url}/{kind}/{prefix}-*", timeout=60)


@pytest.fixture(scope="session")
def service(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("service"))
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


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
