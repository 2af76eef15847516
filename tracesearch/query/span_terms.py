"""The search terms of a span: what exact tag search, numeric comparison and full-text search look at.

One definition for every store. Elasticsearch keeps them in a span document's search-only fields
(``storage/es/document.py``); the in-memory store computes them per span (``storage/memory.py``), and
``query.matching`` evaluates conditions over them, so both stores answer a condition alike.

* ``tags``: one term per attribute key=value (``span.http.method=GET``), scoped ``span.``,
  ``resource.``, ``event.``, ``link.``, ``instrumentation.``; plus ``event:name=<name>`` per event,
  ``instrumentation:name=<name>``, ``instrumentation:version=<version>`` and ``span:traceState=<W3C tracestate>``; and
  ``zipkin:remoteServiceName`` with ``zipkin:remoteServiceName=<name>`` for a span that names a remote
  service (``query.remote_service``).
* ``key_sets``: the keys of each attribute map (``span.http.method\nspan.http.route``), joined by
  newlines. A span's key sets repeat from span to span, so a store keeps a set once and each span
  names it (Elasticsearch: ``document.py``); ``keys`` lists them one by one. A map whose keys cannot
  share a set (a key holding a newline, or a set longer than ``MAX_KEY_SET_CHARS``) adds one ``tags``
  term per key instead (``span.http.method``), as every map did before key sets.
* ``nums``: ``<scope>.<key>=<16 hex digits>`` per numeric value, the digits being an order-preserving
  encoding of the value as a double (``encode_number``), so a range of terms is a numeric range.
* ``texts``: span name, status message, string attribute values and event names (for full text).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterable, Iterator

from tracesearch.model import Attributes, AttrValue, Span
from tracesearch.query.remote_service import REMOTE_SERVICE_FIELD, remote_service_name

KEY_SEPARATOR = "\n"
# A key set is written whole in one term, and ``tags``' ignore_above in the span mapping is 4,096
# characters: room for the set and a short prefix (``storage/es/key_sets.py``: ``keyset:`` and an id).
MAX_KEY_SET_CHARS = 4096 - 64
_SIGN_BIT = 1 << 63
_MASK64 = (1 << 64) - 1


def encode_number(value: float) -> str:
    """16 hex digits whose lexicographic order is the numeric order of ``value``."""
    bits: int = struct.unpack(">Q", struct.pack(">d", value + 0.0))[0]
    bits = (~bits & _MASK64) if bits & _SIGN_BIT else (bits | _SIGN_BIT)
    return f"{bits:016x}"


LOWEST = encode_number(float("-inf"))
HIGHEST = encode_number(float("inf"))
# Small non-negative ints (status codes, counts, thread ids) are most integer attributes; their codes
# are looked up instead of computed (~0.5 µs each, several per span).
SMALL_INTS = 1024
_SMALL_INT_CODES = tuple(encode_number(n) for n in range(SMALL_INTS))


def stringify(value: AttrValue) -> str:
    """The canonical text of a scalar, as it is matched by exact tag search."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


# "span.http.method" by scope and key: keys repeat from span to span, and a lookup is cheaper than
# building the string again. Bounded per scope, since the keys are the clients' to choose.
_SCOPED_NAMES: dict[str, dict[str, str]] = {}
MAX_CACHED_NAMES = 10_000


class SearchTerms:
    """Collects the search terms of one span (or of one resource, shared by its spans)."""

    __slots__ = ("key_sets", "nums", "tags", "texts")

    def __init__(self) -> None:
        self.tags: list[str] = []
        self.nums: list[str] = []
        self.texts: list[str] = []
        self.key_sets: list[str] = []

    def add_attributes(self, scope: str, attributes: Attributes) -> None:
        # Hot path (every attribute of every span): plain types inline, the rest through add_value.
        if not attributes:
            return
        tags, texts = self.tags, self.texts
        keys: list[str] = []
        names = _SCOPED_NAMES.get(scope)
        if names is None:
            names = _SCOPED_NAMES.setdefault(scope, {})
        for key, value in attributes.items():
            name = names.get(key)
            if name is None:
                name = f"{scope}.{key}"
                if len(names) < MAX_CACHED_NAMES:
                    names[key] = name
            keys.append(name)
            kind = type(value)
            if kind is str:
                tags.append(f"{name}={value}")  # type: ignore[str-bytes-safe]
                texts.append(value)  # type: ignore[arg-type]
            elif kind is int:
                tags.append(f"{name}={value}")  # type: ignore[str-bytes-safe]
                code = _SMALL_INT_CODES[value] if 0 <= value < SMALL_INTS else encode_number(value)  # type: ignore[operator, index, arg-type]
                self.nums.append(f"{name}={code}")
            else:
                self.add_value(name, value, keys)
        joined = key_set(keys)
        if joined is None:
            tags += keys
        else:
            self.key_sets.append(joined)

    def add_value(self, name: str, value: AttrValue, keys: list[str]) -> None:
        """The terms of ``value`` under ``name``; the keys of nested maps go to ``keys``."""
        if isinstance(value, str):
            self.tags.append(f"{name}={value}")
            self.texts.append(value)
        elif isinstance(value, bool):
            self.tags.append(f"{name}={'true' if value else 'false'}")
        elif isinstance(value, int | float):
            self.tags.append(f"{name}={stringify(value)}")
            if math.isfinite(value) and abs(value) < 1.7e308:
                self.nums.append(f"{name}={encode_number(float(value))}")
        elif isinstance(value, bytes):
            self.tags.append(f"{name}={stringify(value)}")
        elif isinstance(value, list):
            for item in value:
                self.add_value(name, item, keys)
        elif isinstance(value, dict):
            for key, item in value.items():
                keys.append(f"{name}.{key}")
                self.add_value(f"{name}.{key}", item, keys)

    def add_span_own(self, span: Span) -> None:
        """Everything but the resource's terms (which callers may compute once per resource)."""
        self.texts.append(span.name)
        self.add_attributes("span", span.attributes)

    def add_span_rest(self, span: Span) -> None:
        if span.scope.name:
            self.tags.append(f"instrumentation:name={span.scope.name}")
        if span.scope.version:
            self.tags.append(f"instrumentation:version={span.scope.version}")
        if span.trace_state:
            self.tags.append(f"span:traceState={span.trace_state}")
        if span.scope.attributes:
            self.add_attributes("instrumentation", span.scope.attributes)
        for event in span.events:
            self.tags.append(f"event:name={event.name}")
            self.texts.append(event.name)
            self.add_attributes("event", event.attributes)
        for link in span.links:
            self.add_attributes("link", link.attributes)
        if span.status_message:
            self.texts.append(span.status_message)
        remote = remote_service_name(span)
        if remote:
            self.tags += (REMOTE_SERVICE_FIELD, f"{REMOTE_SERVICE_FIELD}={remote}")


def resource_terms(span: Span) -> SearchTerms:
    terms = SearchTerms()
    terms.add_attributes("resource", span.resource.attributes)
    return terms


def span_terms(span: Span) -> SearchTerms:
    """Every search term of a span, in the order the Elasticsearch document lists them."""
    terms = SearchTerms()
    terms.add_span_own(span)
    resource = resource_terms(span)
    terms.tags += resource.tags
    terms.nums += resource.nums
    terms.texts += resource.texts
    terms.key_sets += resource.key_sets
    terms.add_span_rest(span)
    return terms


def key_set(keys: list[str]) -> str | None:
    """These keys as one key set, or None where they must stay one term each."""
    joined = KEY_SEPARATOR.join(keys)
    if len(joined) > MAX_KEY_SET_CHARS or joined.count(KEY_SEPARATOR) != len(keys) - 1:
        return None
    return joined


def keys(key_sets: Iterable[str]) -> Iterator[str]:
    """Every key of these key sets."""
    for joined in key_sets:
        yield from joined.split(KEY_SEPARATOR)
