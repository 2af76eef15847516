"""The TraceQL syntax tree: what :func:`tracesearch.query.traceql.parse` returns.

This is the contract between the parser, the exact in-memory evaluator and the Elasticsearch planner,
so every node is a small frozen (hashable) dataclass and nothing else. The shape of a parsed query::

    Query
      .spansets : Pipeline            -- always a Pipeline, even for a lone ``{ ... }``
      .metrics  : MetricsQuery | None -- set for ``... | rate()`` and the other *_over_time functions
      .hints    : tuple[(name, Literal)] -- ``with (most_recent=true)``

    Pipeline(stages)            stages run left to right, each maps a list of spansets to a new list
      stage = SpansetExpr | Aggregate | By | Select | Coalesce
    SpansetExpr = SpansetFilter | SpansetOp | Pipeline   (a parenthesised pipeline may be an operand)
    SpansetFilter(expr)         ``{ expr }``; ``{}`` is ``SpansetFilter(Const(True))``
    SpansetOp(op, left, right)  ``&& ||`` and the structural operators of :data:`SPANSET_OPS`

    FieldExpr = And | Or | Not | Compare | IsTrue | Const      (inside ``{ }``, evaluated per span)
    Compare(lhs, op, value)     lhs is a Field, value a Literal (``"x" = span.a`` is normalised to
                                ``span.a = "x"``, with ``<``/``>`` flipped)
    Field = Attribute | IntrinsicField

Precedence is Tempo's (``pkg/traceql/expr.y``): ``&&`` and ``||`` have the SAME precedence and are
left-associative, both inside ``{ }`` and between spansets, so ``a || b && c`` is ``(a || b) && c``.
Structural operators bind tighter than ``&&``/``||``; comparisons tighter than ``&&``/``||``; ``!``
tighter than comparisons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Attribute scopes; "" is the unscoped ``.name`` (span attribute if the span has it, else resource).
SCOPES: Final = ("span", "resource", "event", "link", "instrumentation", "")

# Canonical intrinsic names and their TraceQL type.
INTRINSIC_TYPES: Final[dict[str, str]] = {
    "name": "string",
    "status": "status",
    "statusMessage": "string",
    "kind": "kind",
    "duration": "duration",
    "childCount": "int",
    "span:id": "string",
    "span:parentID": "string",
    "trace:id": "string",
    "rootName": "string",
    "rootServiceName": "string",
    "traceDuration": "duration",
    "event:name": "string",
    "event:timeSinceStart": "duration",
    "link:traceID": "string",
    "link:spanID": "string",
    "instrumentation:name": "string",
    "instrumentation:version": "string",
}

COMPARISON_OPS: Final = ("=", "!=", ">", ">=", "<", "<=", "=~", "!~")
LITERAL_KINDS: Final = ("string", "int", "float", "bool", "duration", "nil", "status", "kind")
STATUSES: Final = ("ok", "error", "unset")
KINDS: Final = ("server", "client", "producer", "consumer", "internal", "unspecified")

# Spanset operators. Structural ones return the right-hand spans that stand in the relation to some
# left-hand span; the ``&`` forms also return the left-hand spans taking part; the ``!`` forms return
# the right-hand spans that do NOT stand in the relation.
LOGICAL_OPS: Final = ("&&", "||")
STRUCTURAL_OPS: Final = (">", ">>", "<", "<<", "~", "&>", "&>>", "&<", "&<<", "&~", "!>", "!>>", "!<", "!<<", "!~")
SPANSET_OPS: Final = LOGICAL_OPS + STRUCTURAL_OPS

AGGREGATE_FUNCS: Final = ("count", "avg", "min", "max", "sum")
SCALAR_OPS: Final = ("=", "!=", ">", ">=", "<", "<=")
METRICS_FUNCS: Final = (
    "rate",
    "count_over_time",
    "quantile_over_time",
    "histogram_over_time",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
)

_PLAIN_NAME = re.compile(r"[^\s{}()=~!<>&|^,\"]+")


@dataclass(frozen=True, slots=True)
class Attribute:
    """``span.http.method`` -> ``Attribute("span", "http.method")``; ``.foo`` -> ``Attribute("", "foo")``."""

    scope: str
    name: str

    @property
    def label(self) -> str:
        """How Tempo prints the attribute (``span.a``, ``.a``, ``span."a b"``): keys of by()/select() values."""
        name = self.name
        if not _PLAIN_NAME.fullmatch(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{self.scope}.{name}"


@dataclass(frozen=True, slots=True)
class IntrinsicField:
    """An intrinsic, always under its canonical name (one of :data:`INTRINSIC_TYPES`)."""

    name: str

    @property
    def label(self) -> str:
        return self.name

    @property
    def type(self) -> str:
        return INTRINSIC_TYPES[self.name]


Field = Attribute | IntrinsicField


@dataclass(frozen=True, slots=True)
class Literal:
    """A typed constant. ``value``: str for string/status/kind (status and kind lower-case words),
    int for int and duration (nanoseconds), float, bool, None for nil."""

    kind: str
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Compare:
    """``lhs op value``; op is one of :data:`COMPARISON_OPS`. ``= nil`` / ``!= nil`` test presence."""

    lhs: Field
    op: str
    value: Literal


@dataclass(frozen=True, slots=True)
class IsTrue:
    """A bare field used as a condition (``{ span.cached }``): holds when the value is boolean true."""

    field: Field


@dataclass(frozen=True, slots=True)
class Const:
    """``{ true }``, ``{ false }``; ``{}`` parses as ``Const(True)``."""

    value: bool


@dataclass(frozen=True, slots=True)
class And:
    left: FieldExpr
    right: FieldExpr


@dataclass(frozen=True, slots=True)
class Or:
    left: FieldExpr
    right: FieldExpr


@dataclass(frozen=True, slots=True)
class Not:
    expr: FieldExpr


FieldExpr = And | Or | Not | Compare | IsTrue | Const


@dataclass(frozen=True, slots=True)
class SpansetFilter:
    """``{ expr }``: the spans of the input spanset for which ``expr`` holds (same span for all conditions)."""

    expr: FieldExpr


@dataclass(frozen=True, slots=True)
class SpansetOp:
    """``left op right`` with op in :data:`SPANSET_OPS`; both sides see the same input spanset."""

    op: str
    left: SpansetExpr
    right: SpansetExpr


@dataclass(frozen=True, slots=True)
class Aggregate:
    """``count() > 2``, ``avg(duration) > 20ms``: keeps the spansets whose aggregate compares as asked.

    ``field`` is None for count(); op is one of :data:`SCALAR_OPS`; value is an int, float or duration
    literal (durations compare in nanoseconds)."""

    func: str
    field: Field | None
    op: str
    value: Literal

    @property
    def label(self) -> str:
        """Tempo's key for the aggregate value in a spanset's attributes (``count()``, ``avg(duration)``)."""
        return f"{self.func}({self.field.label if self.field else ''})"


@dataclass(frozen=True, slots=True)
class By:
    """``by(resource.service.name)``: splits every spanset into one per distinct value (missing is a value)."""

    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Select:
    """``select(span.http.url, ...)``: keeps the spans, attaches these fields to each returned span."""

    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Coalesce:
    """``coalesce()``: merges all spansets of the trace back into one."""


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Stages separated by ``|``; the first stage sees one spanset holding every span of the trace."""

    stages: tuple[Stage, ...]


SpansetExpr = SpansetFilter | SpansetOp | Pipeline
Stage = SpansetFilter | SpansetOp | Pipeline | Aggregate | By | Select | Coalesce


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    """``<spansets> | quantile_over_time(duration, .5, .99) by (resource.service.name)``.

    ``field`` is None for rate() and count_over_time(); ``params`` holds the quantiles."""

    spansets: Pipeline
    func: str
    field: Field | None
    params: tuple[float, ...]
    by: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Query:
    """A whole TraceQL query. ``metrics`` is set when the query ends in a metrics function; then
    ``metrics.spansets is spansets``."""

    spansets: Pipeline
    metrics: MetricsQuery | None = None
    hints: tuple[tuple[str, Literal], ...] = ()
