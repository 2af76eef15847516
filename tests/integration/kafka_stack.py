"""The pipeline topology for tests: a receiver in Kafka mode and any number of ingester processes,
on the real broker and Elasticsearch of the dev stack, with a topic and group of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from devstack.process import dies_with_parent
from tests.integration.conftest import REPO, Service, free_port, start_service


@dataclass
class Ingester:
    process: subprocess.Popen[bytes]
    metrics_port: int
    log_path: Path

    def indexed(self) -> float:
        """This ingester's tracesearch_spans_indexed_total, read from its own /metrics."""
        return self.counter("tracesearch_spans_indexed_total")

    def counter(self, name: str) -> float:
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return 0.0


@dataclass
class KafkaStack:
    es_url: str
    bootstrap: str
    tmp: Path
    prefix: str = field(default_factory=lambda: f"itk-{uuid.uuid4().hex[:8]}")
    ingesters: list[Ingester] = field(default_factory=list)
    service: Service | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "TRACESEARCH_ES_URL": self.es_url,
            "TRACESEARCH_INDEX_PREFIX": self.prefix,
            "TRACESEARCH_PIPELINE": "kafka",
            "TRACESEARCH_KAFKA_BOOTSTRAP": self.bootstrap,
            "TRACESEARCH_KAFKA_TOPIC": f"{self.prefix}-spans",
            "TRACESEARCH_KAFKA_DLQ_TOPIC": f"{self.prefix}-dlq",
            "TRACESEARCH_KAFKA_GROUP": f"{self.prefix}-group",
            "TRACESEARCH_KAFKA_ACK_TIMEOUT": "5s",
            "TRACESEARCH_RETRY_AFTER_SECONDS": "1",
            "TRACESEARCH_BULK_RETRIES": "1",
            # Short service-graph windows, so the map of a test's traces is written within seconds.
            "TRACESEARCH_SERVICEGRAPH_WAIT": "2s",
            "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL": "1s",
        }

    def start_service(self) -> Service:
        self.service = start_service(self.es_url, self.prefix, self.tmp, self.env)
        return self.service

    def start_ingester(self) -> Ingester:
        port = free_port()
        log_path = self.tmp / f"ingester-{port}.log"
        env = {**os.environ, **self.env, "TRACESEARCH_INGESTER_METRICS_PORT": str(port)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "tracesearch", "ingester"],
            cwd=REPO,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=dies_with_parent,
        )
        ingester = Ingester(process, port, log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                ingester.indexed()
                self.ingesters.append(ingester)
                return ingester
            except requests.RequestException:
                if process.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError(f"ingester did not start:\n{log_path.read_text()[-3000:]}")

    def kill_ingester(self, ingester: Ingester, sig: int = signal.SIGKILL) -> None:
        ingester.process.send_signal(sig)
        ingester.process.wait(timeout=30)
        self.ingesters.remove(ingester)

    def stop(self) -> None:
        for ingester in list(self.ingesters):
            self.kill_ingester(ingester, signal.SIGTERM)
        if self.service is not None:
            self.service.process.terminate()
            self.service.process.wait(timeout=30)


class LedgerExporter(SpanExporter):
    """Wraps a real exporter and records the span ids whose export the service acknowledged."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.acked: set[tuple[str, str]] = set()
        self.failed: set[tuple[str, str]] = set()

    def export(self, spans) -> SpanExportResult:  # type: ignore[no-untyped-def]
        result = self.inner.export(spans)
        ids = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}
        (self.acked if result is SpanExportResult.SUCCESS else self.failed).update(ids)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def stored_ids(es_url: str, prefix: str) -> list[tuple[str, str]]:
    """Every (trace id, span id) stored under the prefix, duplicates kept, by scrolling."""
    requests.post(f"{es_url}/{prefix}-span-*/_refresh", timeout=60).raise_for_status()
    ids: list[tuple[str, str]] = []
    body = {"size": 10_000, "_source": ["trace.id", "span.id"], "sort": ["_doc"]}
    answer = requests.post(f"{es_url}/{prefix}-span-*/_search?scroll=1m", json=body, timeout=60).json()
    while answer["hits"]["hits"]:
        ids.extend((h["_source"]["trace"]["id"], h["_source"]["span"]["id"]) for h in answer["hits"]["hits"])
        answer = requests.post(
            f"{es_url}/_search/scroll", json={"scroll": "1m", "scroll_id": answer["_scroll_id"]}, timeout=60
        ).json()
    return ids


def wait_until_stored(es_url: str, prefix: str, expected: set[tuple[str, str]], timeout_s: float = 120) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        ids = stored_ids(es_url, prefix)
        if expected <= set(ids) or time.monotonic() > deadline:
            return ids
        time.sleep(1)


def span_ids(spans: list[ReadableSpan]) -> set[tuple[str, str]]:
    return {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}
