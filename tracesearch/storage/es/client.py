"""One factory for the Elasticsearch client, used by the service, the ingester and the CLI."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.serializer import CompatibilityModeNdjsonSerializer, NdjsonSerializer, OrjsonSerializer

from tracesearch.settings import Settings


class _PassThroughNdjson(CompatibilityModeNdjsonSerializer):
    """The writer builds bulk bodies as bytes already; the stock serializer would copy 1-2 MB again
    per request (measured ~2 µs per span)."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return super().dumps(data)


_JSON = OrjsonSerializer()


def make_client(settings: Settings) -> Elasticsearch:
    """A client with no retries of its own: the writer retries with backoff and tells transient
    failures from bad documents, which the client's blind retries would blur."""
    options: dict[str, Any] = {
        "request_timeout": settings.es_timeout_s,
        "max_retries": 0,
        "retry_on_timeout": False,
        "http_compress": False,
        "serializers": {
            # Answers (bulk items, search hits) decoded with orjson: the stdlib json decoder was 5% of a
            # worker's CPU under ingest load (py-spy).
            "application/json": _JSON,
            "application/vnd.elasticsearch+json": _JSON,
            CompatibilityModeNdjsonSerializer.mimetype: _PassThroughNdjson(),
            NdjsonSerializer.mimetype: _PassThroughNdjson(),
        },
    }
    if settings.es_api_key:
        options["api_key"] = settings.es_api_key
    elif settings.es_username:
        options["basic_auth"] = (settings.es_username, settings.es_password)
    if settings.es_ca_certs:
        options["ca_certs"] = settings.es_ca_certs
    if settings.es_client_cert:
        options["client_cert"] = settings.es_client_cert
        options["client_key"] = settings.es_client_key
    if not settings.es_verify_certs:
        options["verify_certs"] = False
        options["ssl_show_warn"] = False
    return Elasticsearch(list(settings.es_urls), **options)
