"""Readiness of Elasticsearch, for the service's ``/ready``."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from tracesearch.storage.es.search import call


class EsReadiness:
    def __init__(self, client: Elasticsearch):
        self._client = client

    def status(self) -> str:
        health = call(lambda: self._client.cluster.health(timeout="2s")).body
        return str(health.get("status"))
