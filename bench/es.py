"""The few Elasticsearch calls the bench makes itself (stdlib HTTP, nothing from the code under test
except the template installer, which must be tracesearch's own)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracesearch.settings import Settings
from tracesearch.storage.es.client import make_client
from tracesearch.storage.es.indices import span_index_pattern
from tracesearch.storage.es.templates import install_templates, load_templates


class EsError(RuntimeError):
    pass


def call(es_url: str, method: str, path: str, body: Any = None, timeout: float = 300.0) -> Any:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(f"{es_url}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise EsError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc
    return json.loads(raw) if raw else None


def host_port(es_url: str) -> tuple[str, int]:
    """The load generator talks plain HTTP/1.1 to one node; TLS clusters are out of its scope."""
    if not es_url.startswith("http://"):
        raise EsError(f"the bench posts _bulk over plain http only, not to {es_url}")
    host, _, port = es_url.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


@dataclass(frozen=True)
class Node:
    version: str
    heap_max_bytes: int
    pid: int | None


def node(es_url: str) -> Node:
    fields = "nodes.*.version,nodes.*.jvm.mem,nodes.*.process"
    answer = call(es_url, "GET", f"/_nodes/_local/jvm,process?filter_path={fields}")
    info = next(iter(answer["nodes"].values()))
    pid = info.get("process", {}).get("id")
    return Node(info["version"], int(info["jvm"]["mem"]["heap_max_in_bytes"]), pid if _is_local_es(pid) else None)


def _is_local_es(pid: int | None) -> bool:
    """The pid Elasticsearch reports is ours to read only when that node runs on this machine."""
    if pid is None:
        return False
    try:
        return b"elasticsearch" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def indices(es_url: str, pattern: str) -> list[str]:
    """Concrete index names: deletes name them one by one, never by wildcard."""
    try:
        answer = call(es_url, "GET", f"/_resolve/index/{pattern}?expand_wildcards=all")
    except EsError as exc:
        if " 404 " in str(exc):  # a concrete name that does not exist
            return []
        raise
    return sorted(i["name"] for i in answer.get("indices", []))


def delete_indices(es_url: str, pattern: str) -> list[str]:
    names = indices(es_url, pattern)
    for start in range(0, len(names), 50):
        call(es_url, "DELETE", "/" + ",".join(names[start : start + 50]))
    return names


def refresh(es_url: str, prefix: str) -> None:
    call(es_url, "POST", f"/{span_index_pattern(prefix)}/_refresh?allow_no_indices=true")


def count(es_url: str, prefix: str) -> int:
    refresh(es_url, prefix)
    answer = call(es_url, "GET", f"/{span_index_pattern(prefix)}/_count?allow_no_indices=true")
    return int(answer["count"])


def settings_for(es_url: str, prefix: str) -> Settings:
    """The service's settings for this prefix, everything else (refresh interval too) at its default."""
    return Settings(es_urls=(es_url,), index_prefix=prefix)


def install(es_url: str, prefix: str) -> None:
    client = make_client(settings_for(es_url, prefix))
    try:
        install_templates(client, settings_for(es_url, prefix))
    finally:
        client.close()


def drop_prefix(es_url: str, prefix: str) -> None:
    """Span and aggregate indices (service graph, span metrics, service latency) and the templates of one prefix."""
    delete_indices(es_url, span_index_pattern(prefix))
    delete_indices(es_url, f"{prefix}-servicegraph-*,{prefix}-spanmetrics-*,{prefix}-servicelatency-*")
    components, index_templates = load_templates(settings_for(es_url, prefix))
    for name in index_templates:
        _delete_quietly(es_url, f"/_index_template/{name}")
    for name in components:
        _delete_quietly(es_url, f"/_component_template/{name}")


def _delete_quietly(es_url: str, path: str) -> None:
    try:
        call(es_url, "DELETE", path)
    except EsError as exc:
        if " 404 " not in str(exc):
            raise
