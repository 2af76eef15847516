"""``python -m bench.peers.shim LISTEN UPSTREAM``: Elasticsearch's ``GET /`` for Zipkin, everything else passed through.

The minimal Elasticsearch distribution the dev stack runs lacks the ``rest-root`` module, so ``GET /``
answers 405, and Zipkin reads the version there before it starts. This proxy answers ``GET``/``HEAD /``
from ``/_nodes/_local`` and forwards every other request unchanged over one keep-alive connection per
thread. It runs as a process of its own, so the bench can show its CPU apart from Zipkin's.
"""

from __future__ import annotations

import http.client
import http.server
import json
import sys
import threading
from typing import Any

# Per-connection headers, not forwarded either way (the proxy frames each message itself).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host"}
    | {"proxy-connection", "http2-settings"}
)
UPSTREAM_TIMEOUT_S = 300.0
_local = threading.local()


def root_answer(nodes: dict[str, Any]) -> bytes:
    """What ``GET /`` of a full distribution answers, from ``/_nodes/_local``'s answer."""
    node = next(iter(nodes["nodes"].values()))
    version = node["version"]
    return json.dumps(
        {
            "name": node["name"],
            "cluster_name": nodes["cluster_name"],
            "cluster_uuid": "_na_",
            "version": {
                "number": version,
                "build_flavor": "default",
                "build_type": "zip",
                "build_hash": "na",
                "build_date": "1970-01-01T00:00:00Z",
                "build_snapshot": False,
                "lucene_version": "na",
                "minimum_wire_compatibility_version": version,
                "minimum_index_compatibility_version": version,
            },
            "tagline": "You Know, for Search",
        }
    ).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm on, the second waits for the client's
    # delayed ACK, 40 ms on Linux, on every answer.
    disable_nagle_algorithm = True
    upstream_port = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _upstream(self) -> http.client.HTTPConnection:
        connection = getattr(_local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=UPSTREAM_TIMEOUT_S)
            _local.connection = connection
        return connection

    def _forward(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(2):
            connection = self._upstream()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                _local.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, then the empty line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _handle(self) -> None:
        body = self._body()
        if self.command in ("GET", "HEAD") and self.path.split("?")[0] == "/":
            _, _, raw = self._forward(
                "GET", "/_nodes/_local?filter_path=cluster_name,nodes.*.name,nodes.*.version", None, {}
            )
            status = 200
            headers = [("Content-Type", "application/json"), ("X-elastic-product", "Elasticsearch")]
            answer = root_answer(json.loads(raw))
        else:
            sent = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            status, received, answer = self._forward(self.command, self.path, body, sent)
            headers = [(k, v) for k, v in received if k.lower() not in HOP_BY_HOP]
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


def serve(listen: int, upstream: int) -> None:
    Handler.upstream_port = upstream
    server = http.server.ThreadingHTTPServer(("127.0.0.1", listen), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
