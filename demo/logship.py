"""Put the services' ECS JSON log lines into Elasticsearch, as Filebeat or Elastic Agent would.

The services write one JSON object per line to files; a shipper reads them and indexes them
unchanged into the team's log indices. The index template gives the ECS fields the types Elastic's
own ECS templates give them (trace.id and span.id keyword), so a term query on trace.id works.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from demo.config import LOGS_INDEX

TEMPLATE: dict[str, Any] = {
    "index_patterns": [f"{LOGS_INDEX}*"],
    # Above the built-in logs-*-* data-stream template where the distribution ships one.
    "priority": 500,
    "template": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "properties": {
                "@timestamp": {"type": "date"},
                "message": {"type": "text"},
                "log": {"properties": {"level": {"type": "keyword"}, "logger": {"type": "keyword"}}},
                "trace": {"properties": {"id": {"type": "keyword"}}},
                "span": {"properties": {"id": {"type": "keyword"}}},
                "service": {"properties": {"name": {"type": "keyword"}}},
            }
        },
    },
}


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.strip().startswith("{"):
                yield line.strip()


def ship(es_url: str, files: dict[str, Path], timeout: float = 30.0) -> Counter[str]:
    """Index every line of every file; the count of lines indexed per service."""
    es_url = es_url.rstrip("/")
    requests.put(f"{es_url}/_index_template/{LOGS_INDEX}", json=TEMPLATE, timeout=timeout).raise_for_status()
    body: list[str] = []
    shipped: Counter[str] = Counter()
    for service, path in files.items():
        if not path.exists():
            continue
        for line in _lines(path):
            # The line's hash as _id: shipping a file twice does not duplicate its lines.
            line_id = hashlib.sha1(line.encode()).hexdigest()
            body += [json.dumps({"index": {"_index": LOGS_INDEX, "_id": line_id}}), line]
            shipped[service] += 1
    if body:
        answer = requests.post(
            f"{es_url}/_bulk",
            params={"refresh": "wait_for"},
            data="\n".join(body) + "\n",
            headers={"Content-Type": "application/x-ndjson"},
            timeout=timeout,
        )
        answer.raise_for_status()
        if answer.json().get("errors"):
            failed = [item for item in answer.json()["items"] if "error" in item["index"]]
            example = failed[0]["index"]["error"]
            raise RuntimeError(f"{len(failed)} log line(s) refused by Elasticsearch, e.g. {example}")
    return shipped
