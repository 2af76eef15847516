"""Install the JSON index templates of ``index_templates/`` idempotently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from tracesearch.settings import Settings

TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "index_templates"
COMPONENT_SUFFIX = ".component.json"
INDEX_SUFFIX = ".index.json"


def render(text: str, settings: Settings) -> Any:
    """Fill the ``{{name}}`` placeholders of a template file from the settings."""
    values = {
        "prefix": settings.index_prefix,
        "shards": str(settings.index_shards),
        "replicas": str(settings.index_replicas),
        "refresh_interval": settings.index_refresh_interval,
    }
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return json.loads(text)


def load_templates(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(component templates, index templates) by the names they get in Elasticsearch."""
    components: dict[str, Any] = {}
    indices: dict[str, Any] = {}
    for path in sorted(TEMPLATE_DIR.glob("*.json")):
        body = render(path.read_text(), settings)
        if path.name.endswith(COMPONENT_SUFFIX):
            components[f"{settings.index_prefix}-{path.name.removesuffix(COMPONENT_SUFFIX)}"] = body
        elif path.name.endswith(INDEX_SUFFIX):
            indices[f"{settings.index_prefix}-{path.name.removesuffix(INDEX_SUFFIX)}"] = body
    return components, indices


def install_templates(client: Elasticsearch, settings: Settings) -> list[str]:
    """PUT every component template, then every index template; returns the names installed.

    PUT replaces a template with the same name, so running this again is harmless. Existing daily
    indices keep their mapping; the new one applies from the next index created.
    """
    components, indices = load_templates(settings)
    for name, body in components.items():
        client.cluster.put_component_template(name=name, template=body["template"], meta=body.get("_meta"))
    for name, body in indices.items():
        client.indices.put_index_template(
            name=name,
            index_patterns=body["index_patterns"],
            composed_of=body["composed_of"],
            priority=body.get("priority"),
            version=body.get("version"),
            meta=body.get("_meta"),
        )
    return [*components, *indices]
