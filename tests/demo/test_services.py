"""The four service processes propagate one trace and export over all three wire formats.

A throwaway sink stands in for tracesearch's ingest endpoints; it records what arrives
and accepts everything, so this checks the demo's side only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from demo.processes import ServiceCluster
from demo.traffic import send_orders


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, self.headers.get("Content-Type", "")))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sink_url() -> Iterator[str]:
    _Sink.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_one_trace_spans_all_services_and_all_ingest_paths(sink_url: str) -> None:
    with ServiceCluster(sink_url) as cluster:
        sent = send_orders(cluster.urls["frontend"], 5)
        reports = cluster.stop()

    assert [status for _, status in sent] == [200, 200, 200, 502, 200]
    first = sent[0][0]
    for name, report in reports.items():
        assert report.returncode == 0, name
        assert report.failed == {}, name
        assert report.exported.get(first), f"{name} exported nothing for the first trace"
    assert set(_Sink.received) == {
        ("/v1/traces", "application/x-protobuf"),  # frontend, checkout
        ("/v1/traces", "application/json"),  # payments
        ("/api/v2/spans", "application/json"),  # inventory (Zipkin)
    }
