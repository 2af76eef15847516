"""Variants of the span index for ``python -m bench.es_cost``: each one change to the templates
tracesearch installs, or to its ``_bulk`` bodies, priced against the unchanged baseline.

Pure functions over the rendered templates (``load_templates``) and over NDJSON bytes, so the bench
and the unit tests see the same transformation. Nothing here changes what the service installs.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracesearch.storage.es.key_sets import KEY_SET_ID_PREFIX, KEY_SET_PREFIX, parse_carrier

SPAN_MAPPINGS_SUFFIX = "-span-mappings"
SPAN_SETTINGS_SUFFIX = "-span-settings"
JOIN = "+"


@dataclass(frozen=True)
class Variant:
    """One candidate change. ``fields`` merges parameters into mapped fields (dotted paths),
    ``drop`` removes fields from the mapping and from every document, ``index_settings`` merges into
    the span settings' ``index`` object, ``drop_settings`` removes keys from it, ``full_source`` stores
    the whole document in ``_source`` (no excludes), ``auto_id`` lets Elasticsearch make the ``_id``."""

    name: str
    what: str
    costs: str = ""  # which search feature it breaks or what it needs
    fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    index_settings: Mapping[str, Any] = field(default_factory=dict)
    drop_settings: tuple[str, ...] = ()
    full_source: bool = False
    auto_id: bool = False
    # Leave the resource's terms out of every document (``resource.`` tags and numeric tags, its words).
    no_resource_terms: bool = False
    # ``_id`` = base64url(start second, trace id, span id, kind): time-ordered, 39 characters (``time_id``).
    time_id: bool = False
    # ``tags`` without attribute keys: no key set ids or carriers, no bare keys, only ``key=value`` terms
    # (``tags_no_keys``).
    no_keys: bool = False
    # Every key a ``tags`` term of every span (``span.http.route``), as before key sets (``bare_keys``).
    bare_keys: bool = False

    @property
    def changes_documents(self) -> bool:
        changes = (self.auto_id, self.no_resource_terms, self.time_id, self.no_keys, self.bare_keys)
        return bool(self.drop) or any(changes)


BASELINE = Variant("baseline", "the span templates as TemplateInstaller renders them")

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        BASELINE,
        Variant(
            "best_compression",
            "`index.codec: best_compression` (zstd/DEFLATE stored fields)",
            "none: a setting of new daily indices",
            index_settings={"codec": "best_compression"},
        ),
        Variant(
            "tags_no_dv",
            "`tags` without doc values",
            "breaks tag autocomplete (terms aggregations on `tags`) and TraceQL metrics `by(attribute)`",
            fields={"tags": {"doc_values": False}},
        ),
        Variant(
            "no_text",
            "no `text` field (full text off, to price it)",
            "breaks full-text search",
            drop=("text",),
        ),
        Variant(
            "text_docs",
            "`text` with `index_options: docs` (no frequencies, no positions)",
            'breaks quoted phrases in full text (`"card declined"`); AND of words still works',
            fields={"text": {"index_options": "docs"}},
        ),
        Variant(
            "full_source",
            "`_source` without excludes: tags, tags_num and text stored too, so no `_recovery_source`",
            "none for reads; larger source, larger hits unless reads filter `_source`",
            full_source=True,
        ),
        Variant(
            "auto_id",
            "Elasticsearch-generated `_id` instead of our deterministic one",
            "breaks exactly-once writes (replays would duplicate): priced only",
            auto_id=True,
        ),
        Variant(
            "ids_no_dv",
            "`span.id` and `parent.id` without doc values",
            "breaks the whole-trace fetch's sort on `span.id` (search_after paging) unless it sorts otherwise",
            fields={"span.id": {"doc_values": False}, "parent.id": {"doc_values": False}},
        ),
        Variant(
            "resource_once",
            "the resource's `tags`, `tags_num` and words left out of each span document (to price indexing "
            "them once per resource instead of once per span)",
            "needs a resource document of their own and resource conditions resolved to resource ids first",
            no_resource_terms=True,
        ),
        Variant(
            "refresh_5s",
            "`refresh_interval: 5s`",
            "spans searchable up to 5 s later",
            index_settings={"refresh_interval": "5s"},
        ),
        Variant(
            "refresh_default",
            "`refresh_interval` left out (Elasticsearch's 1s, with search-idle: a shard nobody searched for "
            "30 s skips scheduled refreshes); the pass sets `search.idle.after: 1s` so its short window sees the "
            "steady state of a daily index that is written but not searched",
            "none for readers: a search on an idle shard refreshes first (that search waits for it)",
            index_settings={"search.idle.after": "1s"},
            drop_settings=("refresh_interval",),
        ),
        Variant(
            "refresh_30s",
            "`refresh_interval: 30s`",
            "spans searchable up to 30 s later",
            index_settings={"refresh_interval": "30s"},
        ),
        Variant(
            "lz4",
            "`index.codec` left out: Elasticsearch's default (LZ4 stored fields, 8 KB sub-blocks)",
            "more disk",
            drop_settings=("codec",),
        ),
        Variant(
            "legacy_best_compression",
            "`index.codec: legacy_best_compression` (Lucene's DEFLATE with a preset dictionary: a hit "
            "decompresses the dictionary and one 48 KB sub-block, not a whole 240 KB zstd block)",
            "none: a setting of new daily indices",
            index_settings={"codec": "legacy_best_compression"},
        ),
        Variant(
            "sort_trace",
            "`index.sort.field: trace.id` (TRACESEARCH_INDEX_SORT_BY_TRACE): a trace's spans adjacent in each segment",
            "none; sorting at flush and merge",
            index_settings={"sort.field": "trace.id", "sort.order": "asc"},
        ),
        Variant(
            "unsorted",
            "`index.sort` left out: documents in arrival order (for templates installed with the sort)",
            "the whole-trace fetch decompresses a stored-fields block per span instead of per trace",
            drop_settings=("sort",),
        ),
        Variant(
            "sort_trace_start",
            "`index.sort.field: [trace.id, start_ns]`",
            "sorting at flush and merge; a setting of new daily indices",
            index_settings={"sort.field": ["trace.id", "start_ns"], "sort.order": ["asc", "asc"]},
        ),
        Variant(
            "time_id",
            "`_id` = base64url(start second + trace id + span id + kind bytes), 39 characters, time-ordered, "
            "instead of 49 hex characters",
            "still deterministic; a replay across the switch needs the id format chosen per daily index",
            time_id=True,
        ),
        Variant(
            "tags_no_keys",
            "`tags` without attribute keys: only `key=value` terms (no key set ids or sets, no keys of their own)",
            "presence becomes a prefix query on `key=`; key autocomplete must fold `key=value` terms into keys; "
            "an attribute whose value is an empty list is no longer findable",
            no_keys=True,
        ),
        Variant(
            "bare_keys",
            "every attribute key a `tags` term of every span (`span.http.route`), the format before key sets "
            "(`storage/es/key_sets.py`)",
            "none: what daily indices written before key sets hold",
            bare_keys=True,
        ),
        Variant(
            "tags_docs_no_norms",
            "`tags` with `index_options: docs`, `norms: false`",
            "none: these are already the keyword defaults (same index as the baseline)",
            fields={"tags": {"index_options": "docs", "norms": False}},
        ),
    )
}


class UnknownVariant(ValueError):
    pass


def variant(spec: str) -> Variant:
    """A named variant, or several joined with ``+`` applied together (``best_compression+full_source``)."""
    parts = [p.strip() for p in spec.split(JOIN) if p.strip()]
    unknown = [p for p in parts if p not in VARIANTS]
    if not parts or unknown:
        raise UnknownVariant(f"unknown variant {spec!r}: choose from {', '.join(VARIANTS)}, joined with {JOIN}")
    return combine([VARIANTS[p] for p in parts]) if len(parts) > 1 else VARIANTS[parts[0]]


def combine(parts: Sequence[Variant]) -> Variant:
    fields: dict[str, dict[str, Any]] = {}
    settings: dict[str, Any] = {}
    for part in parts:
        for path, params in part.fields.items():
            fields.setdefault(path, {}).update(params)
        settings.update(part.index_settings)
    return Variant(
        JOIN.join(p.name for p in parts),
        "; ".join(p.what for p in parts),
        "; ".join(p.costs for p in parts if p.costs),
        fields,
        tuple(dict.fromkeys(f for p in parts for f in p.drop)),
        settings,
        tuple(dict.fromkeys(k for p in parts for k in p.drop_settings)),
        any(p.full_source for p in parts),
        any(p.auto_id for p in parts),
        any(p.no_resource_terms for p in parts),
        any(p.time_id for p in parts),
        any(p.no_keys for p in parts),
        any(p.bare_keys for p in parts),
    )


def apply_to_templates(components: Mapping[str, Any], change: Variant) -> dict[str, Any]:
    """The component templates (name -> body, as ``load_templates`` returns them) with ``change``
    applied to the span mappings and settings; the input is left as it was."""
    result = copy.deepcopy(dict(components))
    mappings = _one(result, SPAN_MAPPINGS_SUFFIX)["template"]["mappings"]
    settings = _one(result, SPAN_SETTINGS_SUFFIX)["template"]["settings"]["index"]
    settings.update(change.index_settings)
    for key in change.drop_settings:
        settings.pop(key, None)
    for path, params in change.fields.items():
        _mapped(mappings, path).update(params)
    for path in change.drop:
        parent, name = _parent(mappings, path)
        del parent[name]
    excludes: list[str] = mappings.get("_source", {}).get("excludes", [])
    kept = [] if change.full_source else [e for e in excludes if e not in change.drop]
    if kept:
        mappings["_source"]["excludes"] = kept
    else:
        mappings.pop("_source", None)
    return result


def _one(components: dict[str, Any], suffix: str) -> dict[str, Any]:
    found = [body for name, body in components.items() if name.endswith(suffix)]
    if len(found) != 1:
        raise ValueError(f"expected one component template named *{suffix}, found {len(found)}")
    return found[0]  # type: ignore[no-any-return]


def _parent(mappings: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *outer, name = path.split(".")
    properties = mappings["properties"]
    for part in outer:
        properties = properties[part]["properties"]
    if name not in properties:
        raise KeyError(f"the span mapping has no field {path!r}")
    return properties, name


def _mapped(mappings: dict[str, Any], path: str) -> dict[str, Any]:
    parent, name = _parent(mappings, path)
    return parent[name]  # type: ignore[no-any-return]


def apply_to_body(body: bytes, change: Variant) -> bytes:
    """A ``_bulk`` body of create actions with ``change`` applied to each action and document."""
    if not change.changes_documents:
        return body
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) % 2:
        raise ValueError("a _bulk body of create actions has an even number of lines")
    out: list[bytes] = []
    documents = [orjson.loads(line) for line in lines[1::2]]
    # A body carries each key set it names (key_sets.py): the sets by id, for ``bare_keys``.
    sets = dict(p for d in documents for p in map(parse_carrier, d.get("tags", [])) if p) if change.bare_keys else {}
    for action_line, document in zip(lines[::2], documents, strict=True):
        action = orjson.loads(action_line)
        if change.auto_id:
            for meta in action.values():
                meta.pop("_id", None)
        elif change.time_id:
            for meta in action.values():
                meta["_id"] = time_ordered_id(document)
        for path in change.drop:
            _drop(document, path.split("."))
        if change.no_resource_terms:
            _drop_resource_terms(document)
        if change.no_keys and "tags" in document:
            document["tags"] = [t for t in document["tags"] if "=" in t and not t.startswith(_KEY_SET_TERMS)]
        if change.bare_keys and "tags" in document:
            document["tags"] = list(_with_bare_keys(document["tags"], sets))
        out += (orjson.dumps(action), orjson.dumps(document))
    return b"\n".join(out) + b"\n"


_KIND_NUMBERS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
NS_PER_S = 1_000_000_000


def time_ordered_id(document: Mapping[str, Any]) -> str:
    """The ``time_id`` variant's id of a span document: its start second (4 bytes, big-endian), trace id,
    span id and kind number, base64url without padding."""
    raw = (
        (document["start_ns"] // NS_PER_S).to_bytes(4, "big")
        + bytes.fromhex(document["trace"]["id"])
        + bytes.fromhex(document["span"]["id"])
        + bytes((_KIND_NUMBERS[document["span"]["kind"]],))
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _drop(document: dict[str, Any], path: Iterable[str]) -> None:
    *outer, name = path
    for part in outer:
        document = document.get(part, {})
    document.pop(name, None)


RESOURCE_SCOPE = "resource."


def _drop_resource_terms(document: dict[str, Any]) -> None:
    """What ``to_document`` adds for the span's resource: ``resource.*`` tags and numeric tags, and one
    line of ``text`` per string value of the resource (``source.r``)."""
    for name in ("tags", "tags_num"):
        if name in document:
            document[name] = [t for t in document[name] if not t.startswith(RESOURCE_SCOPE)]
    if "text" in document:
        lines = document["text"].split("\n")
        for value in document.get("source", {}).get("r", {}).values():
            if isinstance(value, str) and value in lines:
                lines.remove(value)
        document["text"] = "\n".join(lines)


_KEY_SET_TERMS = (KEY_SET_ID_PREFIX, KEY_SET_PREFIX)


def _with_bare_keys(tags: list[str], sets: Mapping[str, list[str]]) -> Iterator[str]:
    """The terms with each key set id replaced by its keys, and no carried sets."""
    for tag in tags:
        if tag.startswith(KEY_SET_ID_PREFIX):
            yield from sets[tag[len(KEY_SET_ID_PREFIX) :]]
        elif not tag.startswith(KEY_SET_PREFIX):
            yield tag
