"""Whether a span meets a condition, evaluated in memory over its search terms (``query.span_terms``).

The meaning every store must give a condition: the in-memory store uses this directly, and the storage
conformance suite checks that Elasticsearch (``storage/es/compiler.py``) answers the same. Where
Elasticsearch's own semantics leak in, this follows them: text search tokenises like its standard
analyser (words of letters and digits, lower-cased), ``ignore_case`` folds ASCII letters only, and
regular expressions match a whole term.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracesearch.model import Span
from tracesearch.query.conditions import (
    All,
    Any,
    AttrEquals,
    AttrExists,
    AttrMatches,
    AttrRange,
    Condition,
    FieldEquals,
    FieldMatches,
    FieldRange,
    Not,
    Nothing,
    Text,
)
from tracesearch.query.regex import Regex, compile_pattern, fullmatch
from tracesearch.query.span_terms import HIGHEST, LOWEST, encode_number, keys, span_terms

# Fields kept as ``<field>=<value>`` search terms (``query.span_terms``), not as span fields.
TAGGED_FIELDS = frozenset(
    {"event:name", "instrumentation:name", "instrumentation:version", "span:traceState", "zipkin:remoteServiceName"}
)
_WORD = re.compile(r"\w+", re.UNICODE)
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class SpanFacts:
    """What conditions look at, computed once per stored span."""

    span: Span
    tags: frozenset[str]
    numbers: dict[str, tuple[str, ...]]  # scoped name -> encoded numbers
    words: tuple[str, ...]
    fields: dict[str, str]  # single-valued span fields present on the span


def fold(text: str) -> str:
    """ASCII letters lower-cased, others kept: what Elasticsearch's ``case_insensitive`` compares."""
    return text.translate(_ASCII_FOLD)


def words(text: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD.findall(text))


def span_fields(span: Span) -> dict[str, str]:
    fields = {
        "service": span.service_name,
        "name": span.name,
        "status": span.status_code.label,
        "kind": span.kind.label,
        "duration": str(span.duration_ns),
        "span:id": span.span_id,
        "trace:id": span.trace_id,
    }
    if span.status_message:
        fields["statusMessage"] = span.status_message
    if span.parent_span_id:
        fields["span:parentID"] = span.parent_span_id
    return fields


def facts(span: Span) -> SpanFacts:
    terms = span_terms(span)
    numbers: dict[str, list[str]] = {}
    for entry in terms.nums:
        name, _, encoded = entry.rpartition("=")
        numbers.setdefault(name, []).append(encoded)
    return SpanFacts(
        span,
        frozenset((*terms.tags, *keys(terms.key_sets))),
        {name: tuple(values) for name, values in numbers.items()},
        words("\n".join(terms.texts)),
        span_fields(span),
    )


def _regex(pattern: str) -> Regex:
    """Lucene's regexp, anchored, where ``.`` matches any character; on RE2, as every client's pattern."""
    return compile_pattern(pattern, dot_all=True)


def _attr_range(cond: AttrRange, facts: SpanFacts) -> bool:
    encoded = encode_number(cond.number)
    strict = cond.is_precise and cond.op in (">", "<")
    low, high = (encoded, HIGHEST) if cond.op in (">", ">=") else (LOWEST, encoded)
    for name in cond.names:
        for value in facts.numbers.get(name, ()):
            if low <= value <= high and not (strict and value == encoded):
                return True
    return False


def _attr_matches(cond: AttrMatches, facts: SpanFacts) -> bool:
    pattern = _regex(cond.pattern)
    for name in cond.names:
        prefix = f"{name}="
        if any(tag.startswith(prefix) and fullmatch(pattern, tag[len(prefix) :]) for tag in facts.tags):
            return True
    return False


def _field_equals(cond: FieldEquals, facts: SpanFacts) -> bool:
    if cond.field in TAGGED_FIELDS:
        wanted = f"{cond.field}={cond.value}"
        if cond.ignore_case:
            return any(fold(tag) == fold(wanted) for tag in facts.tags if tag.startswith(f"{cond.field}="))
        return wanted in facts.tags
    value = facts.fields.get(cond.field)
    if value is None:
        return False
    if cond.ignore_case:
        return fold(value) == fold(cond.value)
    return value == cond.value


def _field_range(cond: FieldRange, facts: SpanFacts) -> bool:
    value = facts.fields.get(cond.field)
    if value is None:
        return False
    number = int(value)
    tests = {"gt": number.__gt__, "gte": number.__ge__, "lt": number.__lt__, "lte": number.__le__}
    return all(tests[op](bound) for op, bound in cond.bounds)


def _phrase_at(haystack: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))


def _text_term(term: str, facts: SpanFacts) -> bool:
    if term.startswith('"') and term.endswith('"') and len(term) > 1:
        phrase = words(term[1:-1])
        return bool(phrase) and _phrase_at(facts.words, phrase)
    if term.endswith("*"):
        stem = term[:-1].lower()
        return any(w.startswith(stem) for w in facts.words)
    found = words(term)
    return bool(found) and _phrase_at(facts.words, found)


def _text(cond: Text, facts: SpanFacts) -> bool:
    """Elasticsearch's simple query string with ``and`` as default: alternatives split by ``|``, each a
    list of terms that must all occur (``-term`` must not)."""
    for alternative in cond.text.split("|"):
        terms = re.findall(r'-?"[^"]*"|\S+', alternative)
        if not terms:
            continue
        if all(not _text_term(t[1:], facts) if t.startswith("-") else _text_term(t, facts) for t in terms):
            return True
    return False


def matches(cond: Condition, facts: SpanFacts) -> bool:
    if isinstance(cond, All):
        return all(matches(c, facts) for c in cond.conditions)
    if isinstance(cond, Any):
        return any(matches(c, facts) for c in cond.conditions)
    if isinstance(cond, Not):
        return not matches(cond.condition, facts)
    if isinstance(cond, AttrEquals):
        if cond.text is not None and cond.ignore_case:
            folded = {fold(f"{n}={cond.text}") for n in cond.names}
            text = any(fold(t) in folded for t in facts.tags)
        else:
            text = cond.text is not None and any(f"{n}={cond.text}" in facts.tags for n in cond.names)
        number = cond.number is not None and any(
            encode_number(cond.number) in facts.numbers.get(n, ()) for n in cond.names
        )
        return text or number
    if isinstance(cond, AttrRange):
        return _attr_range(cond, facts)
    if isinstance(cond, AttrExists):
        return any(n in facts.tags for n in cond.names)
    if isinstance(cond, AttrMatches):
        return _attr_matches(cond, facts)
    if isinstance(cond, FieldEquals):
        return _field_equals(cond, facts)
    if isinstance(cond, FieldRange):
        return _field_range(cond, facts)
    if isinstance(cond, FieldMatches):
        value = facts.fields.get(cond.field)
        return value is not None and fullmatch(_regex(cond.pattern), value)
    if isinstance(cond, Text):
        return _text(cond, facts)
    if isinstance(cond, Nothing):
        return False
    raise TypeError(f"not a condition: {cond!r}")  # pragma: no cover - Condition is closed
