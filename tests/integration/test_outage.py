"""When Elasticsearch is down, ingest answers 503 with Retry-After and loses nothing it acknowledged."""

from __future__ import annotations

import os
import random
import sys
import time

import pytest
import requests

from tests.integration.conftest import REPO, Service, stop_elasticsearch
from tests.integration.test_storage_properties import request_of, spans_for

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TRACESEARCH_ES_URL")), reason="an external Elasticsearch is not ours to stop"
)


def test_elasticsearch_outage_answers_503_then_recovers(service: Service) -> None:
    sys.path.insert(0, str(REPO))
    from devstack import elasticsearch

    trace_id = f"{random.getrandbits(128):032x}"
    body = request_of(spans_for(trace_id, 20, time.time_ns()))
    stop_elasticsearch(service.es_url)
    try:
        answer = requests.post(
            f"{service.url}/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=60
        )
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) > 0
        search = service.get("/api/services")
        assert search.status_code == 503 and search.json()["errors"][0]["code"] == 503
        # The Tempo and Zipkin read APIs and the service map say "retry later" too, never 500.
        for path in ("/api/search?q={}", "/api/v2/search/tag/name/values", "/api/dependencies", "/api/v2/services"):
            read = service.get(path)
            assert read.status_code == 503 and int(read.headers["Retry-After"]) > 0, (path, read.text)
        assert service.get("/health").status_code == 200
        assert service.get("/ready").status_code == 503
    finally:
        elasticsearch.start()
    answer = requests.post(
        f"{service.url}/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert service.count({"term": {"trace.id": trace_id}}) == 20
