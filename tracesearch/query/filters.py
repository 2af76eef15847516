"""Storage-independent search conditions, shared by the Jaeger, Zipkin and TraceQL front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    """Where an attribute lives; ANY means span, resource or event (Jaeger's and TraceQL's '.attr')."""

    SPAN = "span"
    RESOURCE = "resource"
    EVENT = "event"
    LINK = "link"
    INSTRUMENTATION = "instrumentation"
    ANY = ""


class Op(StrEnum):
    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


@dataclass(frozen=True, slots=True)
class TagEquals:
    """Exact value of an attribute, whatever its type (``500`` matches the int 500 and the string "500")."""

    key: str
    value: str
    scope: Scope = Scope.ANY
    negate: bool = False


@dataclass(frozen=True, slots=True)
class TagCompare:
    """Numeric comparison on a numeric attribute."""

    key: str
    op: Op
    number: float
    scope: Scope = Scope.ANY


@dataclass(frozen=True, slots=True)
class TagExists:
    key: str
    scope: Scope = Scope.ANY
    negate: bool = False


@dataclass(frozen=True, slots=True)
class TextMatch:
    """Words anywhere in span name, status message, string attribute values and event names.

    The text uses Elasticsearch's simple query string syntax: words (all must match),
    "quoted phrases", ``prefix*``, ``-excluded``, ``a | b``.
    """

    text: str


@dataclass(frozen=True, slots=True)
class Intrinsic:
    """A condition on a span field: ``status`` (unset/ok/error), ``kind``, ``name``, ``service``."""

    field: str
    value: str
    negate: bool = False


Condition = TagEquals | TagCompare | TagExists | TextMatch | Intrinsic


@dataclass(slots=True)
class TraceQuery:
    """Find traces with at least one span that meets every condition."""

    start_ns: int
    end_ns: int
    service: str | None = None
    operation: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    limit: int = 20
