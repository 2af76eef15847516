"""Install the JSON index templates of ``index_templates/`` (next to this module) idempotently."""

from __future__ import annotations

import json
import logging
import threading
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from elasticsearch import Elasticsearch

from tracesearch.settings import Settings
from tracesearch.storage.es.search import call

log = logging.getLogger(__name__)

# Package data rather than a path into a source checkout, so an installed wheel finds them too.
TEMPLATE_DIR: Traversable = files("tracesearch.storage.es") / "index_templates"
COMPONENT_SUFFIX = ".component.json"
INDEX_SUFFIX = ".index.json"
# Span indices sorted by it (TRACESEARCH_INDEX_SORT_BY_TRACE): the whole-trace fetch reads a run of documents.
SORT_FIELD = "trace.id"


class TemplatesNotFound(RuntimeError):
    """A kind of template file is missing: installing the rest would leave indices without mappings."""


def render(text: str, settings: Settings) -> Any:
    """Fill the ``{{name}}`` placeholders of a template file from the settings."""
    values = {
        "prefix": settings.index_prefix,
        "shards": str(settings.index_shards),
        "replicas": str(settings.index_replicas),
        "refresh_interval": settings.index_refresh_interval,
        "sort_field": SORT_FIELD if settings.index_sort_by_trace else "",
    }
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return _without_unset(json.loads(text))


def _without_unset(body: Any) -> Any:
    """Index settings whose placeholder was filled with nothing are left out, so Elasticsearch's default
    applies: for ``refresh_interval`` that is 1s *with* search-idle, which any explicit value, even 1s,
    turns off (a shard nobody searched for 30 s skips its scheduled refreshes until the next search). An
    index sort whose field is empty is left out too (unsorted)."""
    index = body.get("template", {}).get("settings", {}).get("index") if isinstance(body, dict) else None
    if isinstance(index, dict):
        for key in [key for key, value in index.items() if value == "" or _sort_unset(value)]:
            del index[key]
    return body


def _sort_unset(value: Any) -> bool:
    return isinstance(value, dict) and value.get("field") == ""


def load_templates(settings: Settings, folder: Traversable | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(component templates, index templates) by the names they get in Elasticsearch, read from
    ``folder`` (the package's own by default); TemplatesNotFound if it has none of either kind."""
    folder = TEMPLATE_DIR if folder is None else folder
    return _load_kind(folder, COMPONENT_SUFFIX, settings), _load_kind(folder, INDEX_SUFFIX, settings)


def _files(folder: Traversable, suffix: str) -> list[Traversable]:
    if not folder.is_dir():
        return []
    return sorted((entry for entry in folder.iterdir() if entry.name.endswith(suffix)), key=lambda entry: entry.name)


def _load_kind(folder: Traversable, suffix: str, settings: Settings) -> dict[str, Any]:
    found = _files(folder, suffix)
    if not found:
        where = str(folder) if folder.is_dir() else f"{folder} (no such folder)"
        raise TemplatesNotFound(
            f"no index template files *{suffix} in {where}: this tracesearch installation lacks its package data"
        )
    return {
        f"{settings.index_prefix}-{entry.name.removesuffix(suffix)}": render(entry.read_text(), settings)
        for entry in found
    }


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


class TemplateInstaller:
    """Installs the templates once per process before its first write, so no daily index is ever
    created with a dynamic mapping (Elasticsearch may have been down when the process started)."""

    def __init__(self, client: Elasticsearch, settings: Settings):
        self._client = client
        self._settings = settings
        self._lock = threading.Lock()
        self._done = not settings.install_templates

    def ensure(self) -> None:
        if self._done:
            return
        with self._lock:
            if not self._done:
                names = call(lambda: install_templates(self._client, self._settings))
                log.info("index templates installed: %s", ", ".join(names))
                self._done = True
