"""Key sets in span documents: each span names the key sets of its attribute maps by id, and the sets
themselves are written a few times per daily index.

A span's attribute keys (``query.span_terms``'s ``key_sets``) repeat from span to span. Writing every key
as a term of every span cost Elasticsearch ~15 µs of CPU per span (issue 14: the bytes of ~25 terms per
span in the parser, the translog, the stored source and the index), so a span document holds one short
term per key set instead:

* ``keys:<id>`` in every span that has the set (``id``: 16 hex digits of BLAKE2b over the set);
* ``keyset:<id>:<key>\\n<key>...`` in the first span of each ``_bulk`` body and daily index that has the
  set (the carrier): so every daily index holding ``keys:<id>`` also holds the set itself.

Readers learn the sets of a range from the terms dictionary (``_terms_enum`` over ``keyset:``: the
distinct sets, no document is read), then look for a key as the ``keys:<id>`` of every set listing
it, or as a term of its own (a key kept out of a set, and every key in daily indices written before
key sets).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tracesearch.query.conditions import All, AttrExists, Condition, Not
from tracesearch.query.conditions import Any as AnyOf
from tracesearch.query.span_terms import KEY_SEPARATOR

KEY_SET_ID_PREFIX = "keys:"
KEY_SET_PREFIX = "keyset:"
ID_CHARS = 16
# Ids by key set, bounded: sets are the clients' to choose.
MAX_CACHED_IDS = 10_000
_IDS: dict[str, str] = {}
# Sets per _terms_enum page, and the most a reader gathers (a range with more distinct key sets than
# this answers presence from the sets it saw first).
ENUM_PAGE = 10_000
MAX_KEY_SETS = 100_000


def key_set_id(joined: str) -> str:
    found = _IDS.get(joined)
    if found is None:
        found = hashlib.blake2b(joined.encode(), digest_size=ID_CHARS // 2).hexdigest()
        if len(_IDS) < MAX_CACHED_IDS:
            _IDS[joined] = found
    return found


def id_term(joined: str) -> str:
    return KEY_SET_ID_PREFIX + key_set_id(joined)


def carrier_term(joined: str) -> str:
    return f"{KEY_SET_PREFIX}{key_set_id(joined)}:{joined}"


def parse_carrier(term: str) -> tuple[str, list[str]] | None:
    """(id, keys) of a carrier term, or None for any other term."""
    if not term.startswith(KEY_SET_PREFIX) or len(term) < len(KEY_SET_PREFIX) + ID_CHARS + 1:
        return None
    start = len(KEY_SET_PREFIX)
    return term[start : start + ID_CHARS], term[start + ID_CHARS + 1 :].split(KEY_SEPARATOR)


def key_set_terms(key_sets: Iterable[str], day: int, carried: set[tuple[int, str]] | None) -> list[str]:
    """The terms of a span's key sets: ``keys:<id>`` each, and the carrier of each set not yet carried in
    this body's ``day`` (``carried`` is updated; None: a document on its own carries every set)."""
    found = []
    for joined in key_sets:
        set_id = key_set_id(joined)
        found.append(KEY_SET_ID_PREFIX + set_id)
        if carried is None or (day, set_id) not in carried:
            found.append(f"{KEY_SET_PREFIX}{set_id}:{joined}")
            if carried is not None:
                carried.add((day, set_id))
    return found


TermsEnum = Callable[[str, str, str | None], Mapping[str, Any]]


def known_sets(terms_enum: TermsEnum, index: str) -> dict[str, list[str]]:
    """Every key set the daily indices ``index`` hold, by id: ``terms_enum(index, prefix, search_after)``
    answers as Elasticsearch's ``_terms_enum`` does."""
    found: dict[str, list[str]] = {}
    after: str | None = None
    while len(found) < MAX_KEY_SETS:
        answer = terms_enum(index, KEY_SET_PREFIX, after)
        page = [str(term) for term in answer.get("terms", [])]
        for term in page:
            parsed = parse_carrier(term)
            if parsed is not None:
                found[parsed[0]] = parsed[1]
        if len(page) < ENUM_PAGE:
            break
        after = page[-1]
    return found


def ids_listing(sets: Mapping[str, list[str]], names: Iterable[str]) -> list[str]:
    """The ids of the sets that list any of ``names``, sorted."""
    wanted = set(names)
    return sorted(set_id for set_id, keys in sets.items() if wanted.intersection(keys))


def asks_for_keys(conditions: Iterable[Condition]) -> bool:
    """Whether any condition, however deep, asks whether a key is present."""
    for cond in conditions:
        if isinstance(cond, AttrExists):
            return True
        if isinstance(cond, Not) and asks_for_keys([cond.condition]):
            return True
        if isinstance(cond, All | AnyOf) and asks_for_keys(cond.conditions):
            return True
    return False


def resolve(cond: Condition, sets: Mapping[str, list[str]]) -> Condition:
    """``cond`` with each presence condition given the ids of the key sets listing its keys."""
    if isinstance(cond, AttrExists):
        return AttrExists(cond.names, tuple(ids_listing(sets, cond.names)))
    if isinstance(cond, Not):
        return Not(resolve(cond.condition, sets))
    if isinstance(cond, All):
        return All(tuple(resolve(c, sets) for c in cond.conditions))
    if isinstance(cond, AnyOf):
        return AnyOf(tuple(resolve(c, sets) for c in cond.conditions))
    return cond
