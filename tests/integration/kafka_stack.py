"""The Kafka pipeline as the tests run it (devstack.pipeline's topology with the tests' service and
short timeouts), and what tells whether every acknowledged span was stored exactly once."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from devstack.launch import IngesterProcess
from devstack.pipeline import KafkaPipeline
from tests.integration.conftest import Service, start_service

# Answers and retries within seconds, and service-graph windows short enough that the map of a test's
# traces is written within seconds.
SETTINGS = {
    "TRACESEARCH_KAFKA_ACK_TIMEOUT": "5s",
    "TRACESEARCH_RETRY_AFTER_SECONDS": "1",
    "TRACESEARCH_BULK_RETRIES": "1",
    "TRACESEARCH_SERVICEGRAPH_WAIT": "2s",
    "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL": "1s",
}
INGESTER_START_TIMEOUT_S = 30.0


class KafkaStack(KafkaPipeline[Service]):
    def __init__(self, es_url: str, bootstrap: str, tmp: Path) -> None:
        super().__init__(
            es_url,
            bootstrap,
            f"itk-{uuid.uuid4().hex[:8]}",
            tmp,
            settings=SETTINGS,
            ingester_timeout=INGESTER_START_TIMEOUT_S,
        )

    def _start_receiver(self, env: dict[str, str]) -> Service:
        return start_service(self.es_url, self.prefix, self.folder, env)

    @property
    def receiver(self) -> Service:
        """The service start_service() started (``service`` is None until then)."""
        assert self.service is not None, "start_service() first"
        return self.service

    def kill_ingester(self, ingester: IngesterProcess, sig: int = signal.SIGKILL) -> None:
        self.stop_ingester(ingester, sig)


class LedgerExporter(SpanExporter):
    """Wraps a real exporter and records the span ids whose export the service acknowledged."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.acked: set[tuple[str, str]] = set()
        self.failed: set[tuple[str, str]] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        ids = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}
        (self.acked if result is SpanExportResult.SUCCESS else self.failed).update(ids)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _post(url: str, body: dict[str, Any], attempts: int = 20) -> dict[str, Any]:
    """A search that waits out a daily index being created (503 no_shard_available, seen under load)."""
    for _ in range(attempts - 1):
        answer = requests.post(url, json=body, timeout=60)
        if answer.status_code != 503:
            break
        time.sleep(0.5)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def stored_ids(es_url: str, prefix: str) -> list[tuple[str, str]]:
    """Every (trace id, span id) stored under the prefix, duplicates kept, by scrolling."""
    requests.post(f"{es_url}/{prefix}-span-*/_refresh", timeout=60).raise_for_status()
    ids: list[tuple[str, str]] = []
    body: dict[str, Any] = {"size": 10_000, "_source": ["trace.id", "span.id"], "sort": ["_doc"]}
    answer = _post(f"{es_url}/{prefix}-span-*/_search?scroll=1m", body)
    while answer["hits"]["hits"]:
        ids.extend((h["_source"]["trace"]["id"], h["_source"]["span"]["id"]) for h in answer["hits"]["hits"])
        answer = _post(f"{es_url}/_search/scroll", {"scroll": "1m", "scroll_id": answer["_scroll_id"]})
    return ids


def wait_until_stored(
    es_url: str, prefix: str, expected: set[tuple[str, str]], timeout_s: float = 120
) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout_s
    while True:
        ids = stored_ids(es_url, prefix)
        if expected <= set(ids) or time.monotonic() > deadline:
            return ids
        time.sleep(1)


def span_ids(spans: Sequence[ReadableSpan]) -> set[tuple[str, str]]:
    return {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}
