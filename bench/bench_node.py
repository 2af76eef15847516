"""The settings of a bench's own Elasticsearch node (``make bench-peers``, ``bench-es-cost``, ``bench-growth``,
``bench.es_fetch``): the dev stack's version and Java on a port of its own, never an external cluster, and
Lucene through mmap as on a production node (``devstack.es_config.render_elasticsearch_yml``)."""

from __future__ import annotations

import os
from dataclasses import replace

from devstack.settings import ENV_ES_HEAP, ENV_ES_PORT, ENV_ES_URL, ENV_KAFKA_BOOTSTRAP, Settings


def node_settings(port: int, heap: str | None = None) -> Settings:
    """``heap`` None: the dev stack's heap (TRACESEARCH_DEVSTACK_ES_HEAP or its default)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV_ES_URL, ENV_KAFKA_BOOTSTRAP)}
    env[ENV_ES_PORT] = str(port)
    if heap is not None:
        env[ENV_ES_HEAP] = heap
    return replace(Settings.from_env(env), es_mmap=True)
