"""Span conditions: one storage-independent model for what every front end asks of a span.

The Jaeger and Zipkin search parameters (``jaeger_tags``, ``zipkin_annotations``) and the TraceQL
planner (``traceql.pushdown``) all produce these; a store compiles them into its own query
(``storage/es/compiler.py``, the only code that writes Elasticsearch query JSON) or evaluates them
(``query.matching``, used by the in-memory store). A search holds when *one span* meets every condition
of its list.

Attributes are named with their scope (``span.http.method``, ``resource.region``); a condition on
several names holds when any of them does (an unscoped ``.region`` is ``span.region`` or
``resource.region``). Values are compared as the search terms of ``query.span_terms`` keep them: text
as ``stringify`` writes it, numbers as doubles.
"""

from __future__ import annotations

from dataclasses import dataclass

# Span fields a condition can name, beside attributes. ``event:name`` may hold several values per span
# (one per event); the others one. ``span:traceState`` is the span's W3C tracestate;
# ``zipkin:remoteServiceName`` the remote service the span names (``query.remote_service``). Those and
# ``instrumentation:*`` are absent when empty.
FIELDS = frozenset(
    {
        "service",
        "name",
        "status",
        "kind",
        "statusMessage",
        "duration",
        "span:id",
        "span:parentID",
        "trace:id",
        "event:name",
        "instrumentation:name",
        "instrumentation:version",
        "span:traceState",
        "zipkin:remoteServiceName",
    }
)
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})
COMPARISONS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
# Doubles hold every integer up to 2**53 exactly; beyond, two numbers may be kept as one.
EXACT_INTEGER_LIMIT = 2**53


@dataclass(frozen=True, slots=True)
class AttrEquals:
    """An attribute equals a value: as text (``"500"``, ``"true"``), as a number, or either;
    ``ignore_case`` folds ASCII letters of the text (Zipkin matches names so)."""

    names: tuple[str, ...]
    text: str | None = None
    number: float | None = None
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class AttrRange:
    """A numeric attribute compares with ``number`` (``op``: ``>``, ``>=``, ``<``, ``<=``).

    Numbers are kept as doubles: beyond ``EXACT_INTEGER_LIMIT`` a strict bound could miss a value kept
    equal to it, so stores compare inclusively there (a superset; see ``is_precise``)."""

    names: tuple[str, ...]
    op: str
    number: float

    @property
    def is_precise(self) -> bool:
        return abs(self.number) < EXACT_INTEGER_LIMIT


@dataclass(frozen=True, slots=True)
class AttrExists:
    """The span has an attribute with any of these keys. ``key_sets``: where a store keeps keys as key
    sets (Elasticsearch, ``storage/es/key_sets.py``), the ids of its sets listing one of the names,
    filled in by its reader before the condition is compiled; other stores ignore it."""

    names: tuple[str, ...]
    key_sets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AttrMatches:
    """The text of an attribute value matches a regular expression as a whole (anchored), written in
    the syntax that RE2 and Lucene read alike (literals, ``.``, ``*``, ``+``, ``?``, ``|``, groups)."""

    names: tuple[str, ...]
    pattern: str


@dataclass(frozen=True, slots=True)
class FieldEquals:
    """A span field (see ``FIELDS``) equals a value; ``ignore_case`` for names matched as Zipkin does."""

    field: str
    value: str
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class FieldRange:
    """A numeric span field (``duration``, in nanoseconds) within bounds: ((``gt``|``gte``|``lt``|``lte``, n), ...)."""

    field: str
    bounds: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class FieldMatches:
    """A span field matches a regular expression as a whole (same syntax as ``AttrMatches``)."""

    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Text:
    """Words anywhere in span name, status message, string attribute values and event names, in the
    simple query string syntax: words (all must occur), "quoted phrases", ``prefix*``, ``-excluded``,
    ``a | b``; case-insensitive."""

    text: str


@dataclass(frozen=True, slots=True)
class Nothing:
    """Holds on no span."""


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


@dataclass(frozen=True, slots=True)
class All:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Any:
    conditions: tuple[Condition, ...]


Leaf = AttrEquals | AttrRange | AttrExists | AttrMatches | FieldEquals | FieldRange | FieldMatches | Text | Nothing
Condition = Leaf | Not | All | Any
NOTHING = Nothing()


def alternatives(condition: Leaf) -> int:
    """How many alternatives a leaf stands for: one per name for ranges and regexes on several names,
    two for an ``AttrEquals`` on text and number (compiled as an ``Any`` of them), else one."""
    if isinstance(condition, AttrRange | AttrMatches):
        return len(condition.names)
    if isinstance(condition, AttrEquals):
        # Matched ignoring case, text is one query per name (Elasticsearch's ``terms`` has no such option).
        texts = 0 if condition.text is None else len(condition.names) if condition.ignore_case else 1
        return texts + (condition.number is not None)
    return 1


def members(combination: All | Any) -> list[Condition]:
    """The conditions a combination joins once flattened: a member of the same kind adds its own
    members (``a && (b && c)`` joins three), so chains compile to one level, not one per operator."""
    flat: list[Condition] = []
    for child in combination.conditions:
        if type(child) is type(combination):
            flat.extend(members(child))
        else:
            flat.append(child)
    return flat


def depth(condition: Condition) -> int:
    """Levels of boolean nesting of the condition once compiled (flattened as ``members`` says, a leaf
    of several alternatives being one level, merged into an enclosing ``Any``). Stores bound it
    (Elasticsearch refuses queries nested past 30 levels), so planners keep pushed conditions shallow."""
    if isinstance(condition, Not):
        return 1 + depth(condition.condition)
    if isinstance(condition, All | Any):
        depths: list[int] = []
        for member in members(condition):
            if isinstance(condition, Any) and not isinstance(member, Not | All | Any) and alternatives(member) > 1:
                depths += [0] * alternatives(member)
            else:
                depths.append(depth(member))
        return 1 + max(depths) if len(depths) > 1 else (depths[0] if depths else 0)
    return 1 if alternatives(condition) > 1 else 0


# Where an unscoped Jaeger or Zipkin tag is looked up: span tags, process (resource) tags, log fields.
JAEGER_SCOPES = ("span", "resource", "event")


def scoped(key: str, scopes: tuple[str, ...] = JAEGER_SCOPES) -> tuple[str, ...]:
    return tuple(f"{scope}.{key}" for scope in scopes)


def as_number(text: str) -> float | None:
    """The number a text reads as, if any (finite only): tags typed as text also match numbers."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def tag_equals(key: str, value: str, scopes: tuple[str, ...] = JAEGER_SCOPES, ignore_case: bool = False) -> AttrEquals:
    """Jaeger's exact tag match, whatever the type: ``500`` matches the int 500 and the string "500"."""
    return AttrEquals(scoped(key, scopes), text=value, number=as_number(value), ignore_case=ignore_case)


@dataclass(slots=True)
class TraceQuery:
    """Find the newest ``limit`` traces with at least one span in [start_ns, end_ns] meeting every condition."""

    start_ns: int
    end_ns: int
    conditions: list[Condition]
    limit: int = 20


def span_fields(
    service: str | None = None,
    name: str | None = None,
    min_duration_ns: int | None = None,
    max_duration_ns: int | None = None,
    ignore_case: bool = False,
) -> list[Condition]:
    """The conditions of the search forms' own fields (service, operation, duration bounds); names
    compared ignoring ASCII case when asked (Zipkin's)."""
    found: list[Condition] = []
    if service:
        found.append(FieldEquals("service", service, ignore_case))
    if name:
        found.append(FieldEquals("name", name, ignore_case))
    bounds = []
    if min_duration_ns is not None:
        bounds.append(("gte", min_duration_ns))
    if max_duration_ns is not None:
        bounds.append(("lte", max_duration_ns))
    if bounds:
        found.append(FieldRange("duration", tuple(bounds)))
    return found
