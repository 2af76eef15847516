"""Recursive-descent parser for TraceQL (tokens from :mod:`.lexer`, tree in :mod:`.ast`).

Grammar (EBNF; ``&&``/``||`` share one precedence level and are left-associative, as in Tempo)::

    query        = pipeline [ "|" metrics ] [ hints ] EOF
    pipeline     = stage { "|" stage }
    stage        = "by" "(" field { "," field } ")"
                 | "select" "(" field { "," field } ")"
                 | "coalesce" "(" ")"
                 | aggregate scalar_op number | number scalar_op aggregate
                 | spanset_expr
    aggregate    = "count" "(" ")" | ( "avg" | "min" | "max" | "sum" ) "(" field ")"
    spanset_expr = structural { ( "&&" | "||" ) structural }
    structural   = spanset_atom { struct_op spanset_atom }
    struct_op    = ">" | ">>" | "<" | "<<" | "~" | "&>" | "&>>" | "&<" | "&<<" | "&~"
                 | "!>" | "!>>" | "!<" | "!<<" | "!~"
    spanset_atom = "{" [ field_expr ] "}" | "(" pipeline ")"
    field_expr   = comparison { ( "&&" | "||" ) comparison }
    comparison   = unary [ cmp_op unary ]          -- one side a field, the other a value
    cmp_op       = "=" | "!=" | ">" | ">=" | "<" | "<=" | "=~" | "!~"
    unary        = "!" unary | "(" field_expr ")" | field | value
    field        = attribute | scoped_intrinsic | intrinsic_word
    value        = string | [ "-" ] ( int | float | duration ) | "true" | "false" | "nil"
                 | "ok" | "error" | "unset" | kind_word | "minInt" | "maxInt"
    metrics      = metrics_fn "(" [ field { "," number } ] ")" [ "by" "(" field { "," field } ")" ]
    hints        = "with" "(" ident "=" value { "," ident "=" value } ")"

Not supported (clear errors): arithmetic, comparing two fields, the ``parent.`` scope, metrics math,
``compare()``, ``topk``/``bottomk`` and metrics filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tracesearch.query.regex import Regex, RegexError, compile_pattern
from tracesearch.query.traceql import ast
from tracesearch.query.traceql.errors import TraceQLError
from tracesearch.query.traceql.lexer import Token, tokenize

_LEGACY_INTRINSICS: Final = {
    "name": "name",
    "status": "status",
    "statusMessage": "statusMessage",
    "kind": "kind",
    "duration": "duration",
    "childCount": "childCount",
    "rootName": "rootName",
    "rootServiceName": "rootServiceName",
    "rootService": "rootServiceName",
    "traceDuration": "traceDuration",
}
_SCOPED_INTRINSICS: Final = {
    "trace": {"duration": "traceDuration", "rootName": "rootName", "rootService": "rootServiceName", "id": "trace:id"},
    "span": {
        "name": "name",
        "status": "status",
        "statusMessage": "statusMessage",
        "kind": "kind",
        "duration": "duration",
        "id": "span:id",
        "parentID": "span:parentID",
        "childCount": "childCount",
    },
    "event": {"name": "event:name", "timeSinceStart": "event:timeSinceStart"},
    "link": {"traceID": "link:traceID", "spanID": "link:spanID"},
    "instrumentation": {"name": "instrumentation:name", "version": "instrumentation:version"},
}
_UNSUPPORTED_WORDS: Final = ("parent", "nestedSetLeft", "nestedSetRight", "nestedSetParent")
_INT64: Final = 2**63
_KEYWORD_VALUES: Final[dict[str, ast.Literal]] = {
    "true": ast.Literal("bool", True),
    "false": ast.Literal("bool", False),
    "nil": ast.Literal("nil", None),
    "minInt": ast.Literal("int", -_INT64),
    "maxInt": ast.Literal("int", _INT64 - 1),
    **{word: ast.Literal("status", word) for word in ast.STATUSES},
    **{word: ast.Literal("kind", word) for word in ast.KINDS},
}
_ARITHMETIC: Final = ("+", "-", "*", "/", "%", "^")
_NUMERIC: Final = ("int", "float", "duration")
_FLIPPED: Final = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
_UNSUPPORTED_STAGES: Final = ("compare", "topk", "bottomk")


def parse(query: str) -> ast.Query:
    """Parse a TraceQL query; :class:`TraceQLError` (and nothing else) for any bad input."""
    if not isinstance(query, str):
        raise TraceQLError("the query must be a string", "", 0)
    try:
        return _Parser(query).query()
    except RecursionError:
        raise TraceQLError("the query is nested too deeply", query, 0) from None


def compile_regex(pattern: str) -> Regex:
    """Compiled once per pattern, by RE2 (linear time); TraceQL regexes are fully anchored, so callers
    use ``fullmatch``. :class:`RegexError` for a pattern RE2 cannot run."""
    return compile_pattern(pattern)


@dataclass(frozen=True, slots=True)
class _Operand:
    """One side of a comparison while it is being parsed: a field, a value, or already a condition."""

    pos: int
    field: ast.Field | None = None
    literal: ast.Literal | None = None
    condition: ast.FieldExpr | None = None
    negation: bool = False


class _Parser:
    def __init__(self, query: str) -> None:
        self.text = query
        self.tokens = tokenize(query)
        self.index = 0

    # -- token helpers ----------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.token
        return token.kind == kind and (text is None or token.text == text)

    def at_op(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def fail(self, reason: str, token: Token | None = None) -> TraceQLError:
        return TraceQLError(reason, self.text, (token or self.token).pos)

    def expect(self, kind: str, what: str, after: str) -> Token:
        if self.token.kind != kind:
            raise self.fail(f"expected {what} after {after}, found {self.token.describe()}")
        return self.advance()

    # -- query and pipelines ----------------------------------------------------------------------

    def query(self) -> ast.Query:
        if self.at("eof"):
            raise self.fail("the query is empty; '{}' matches every span")
        pipeline, metrics = self.pipeline(top=True)
        hints = self.hints() if self.at("ident", "with") else ()
        if not self.at("eof"):
            raise self.fail(f"unexpected {self.token.describe()} after the end of the query")
        if metrics is not None:
            metrics = ast.MetricsQuery(pipeline, metrics.func, metrics.field, metrics.params, metrics.by)
        return ast.Query(pipeline, metrics, hints)

    def pipeline(self, top: bool) -> tuple[ast.Pipeline, ast.MetricsQuery | None]:
        stages = [self.stage(first=True)]
        while self.at("op", "|"):
            self.advance()
            if self.at("ident") and self.token.text in ast.METRICS_FUNCS:
                if not top:
                    raise self.fail("metrics functions are only allowed at the end of the whole query")
                return ast.Pipeline(tuple(stages)), self.metrics(ast.Pipeline(tuple(stages)))
            if self.at("eof") or self.at("op", "|") or self.at(")"):
                raise self.fail(f"expected a pipeline stage after '|', found {self.token.describe()}")
            stages.append(self.stage(first=False))
        return ast.Pipeline(tuple(stages)), None

    def stage(self, first: bool) -> ast.Stage:
        token = self.token
        if token.kind == "ident":
            word = token.text
            if word in ("by", "select"):
                self.advance()
                fields = self.field_list(word)
                return ast.By(fields) if word == "by" else ast.Select(fields)
            if word == "coalesce":
                self.advance()
                self.expect("(", "'('", "'coalesce'")
                self.expect(")", "')'", "'coalesce('")
                return ast.Coalesce()
            if word in ast.AGGREGATE_FUNCS:
                return self.aggregate_filter()
            if word in _UNSUPPORTED_STAGES:
                raise self.fail(f"'{word}' is not supported")
            if word in ast.METRICS_FUNCS:
                raise self.fail(f"'{word}' needs spans to work on: write '{{}} | {word}(...)'")
        if token.kind in _NUMERIC or self.at_op("-"):
            return self.aggregate_filter()
        if token.kind not in ("{", "("):
            where = "at the start of the query" if first else "after '|'"
            raise self.fail(f"expected '{{', '(' or a pipeline function {where}, found {token.describe()}")
        return self.spanset_expr()

    def field_list(self, function: str) -> tuple[ast.Field, ...]:
        self.expect("(", "'('", f"'{function}'")
        fields = [self.field_only(f"'{function}('")]
        while self.at(","):
            self.advance()
            fields.append(self.field_only("','"))
        self.expect(")", "')' or ','", "the fields")
        return tuple(fields)

    def field_only(self, after: str) -> ast.Field:
        token = self.token
        field = self.try_field()
        if field is None:
            raise self.fail(f"expected an attribute or intrinsic after {after}, found {token.describe()}", token)
        return field

    # -- aggregates -------------------------------------------------------------------------------

    def aggregate_filter(self) -> ast.Aggregate:
        if self.at("ident") and self.token.text in ast.AGGREGATE_FUNCS:
            func, field = self.aggregate_call()
            op = self.scalar_op(f"'{func}()'")
            value = self.number_value(f"'{op}'")
            return ast.Aggregate(func, field, op, value)
        value = self.number_value("'|'")
        op = self.scalar_op("the number")
        if not (self.at("ident") and self.token.text in ast.AGGREGATE_FUNCS):
            raise self.fail(
                f"expected an aggregate (count, avg, min, max, sum) after '{op}', found {self.token.describe()}"
            )
        func, field = self.aggregate_call()
        return ast.Aggregate(func, field, _FLIPPED.get(op, op), value)

    def aggregate_call(self) -> tuple[str, ast.Field | None]:
        func = self.advance().text
        self.expect("(", "'('", f"'{func}'")
        field = None
        if func != "count":
            field = self.field_only(f"'{func}('")
        self.expect(")", "')'", f"'{func}(' and its argument" if field else f"'{func}('")
        return func, field

    def scalar_op(self, after: str) -> str:
        if not self.at_op(*ast.SCALAR_OPS):
            raise self.fail(f"expected a comparison (= != > >= < <=) after {after}, found {self.token.describe()}")
        op = self.advance().text
        if self.at_op(*_ARITHMETIC) and not self.at_op("-"):
            raise self.fail(f"arithmetic ('{self.token.text}') is not supported")
        return op

    def number_value(self, after: str) -> ast.Literal:
        token = self.token
        literal = self.try_value()
        if literal is None or literal.kind not in _NUMERIC:
            raise self.fail(f"expected a number or a duration after {after}, found {token.describe()}", token)
        if self.at_op(*_ARITHMETIC):
            raise self.fail(f"arithmetic ('{self.token.text}') is not supported")
        return literal

    # -- metrics and hints ------------------------------------------------------------------------

    def metrics(self, spansets: ast.Pipeline) -> ast.MetricsQuery:
        func = self.advance().text
        self.expect("(", "'('", f"'{func}'")
        field: ast.Field | None = None
        params: list[float] = []
        if func not in ("rate", "count_over_time"):
            field = self.field_only(f"'{func}('")
            if func == "quantile_over_time":
                self.expect(",", "',' and the quantiles", "the field")
                params.append(self.quantile())
                while self.at(","):
                    self.advance()
                    params.append(self.quantile())
        self.expect(")", "')'", f"the arguments of '{func}'")
        by: tuple[ast.Field, ...] = ()
        if self.at("ident", "by"):
            self.advance()
            by = self.field_list("by")
        if self.at("op", "|") or self.at_op(*ast.SCALAR_OPS):
            raise self.fail("stages after a metrics function (topk, bottomk, filters) are not supported")
        return ast.MetricsQuery(spansets, func, field, tuple(params), by)

    def quantile(self) -> float:
        token = self.token
        literal = self.try_value()
        if literal is None or literal.kind not in ("int", "float"):
            raise self.fail(f"expected a quantile such as .95, found {token.describe()}", token)
        assert isinstance(literal.value, int | float)
        if not 0 <= literal.value <= 1:
            raise self.fail(f"a quantile must be between 0 and 1, found {token.text}", token)
        return float(literal.value)

    def hints(self) -> tuple[tuple[str, ast.Literal], ...]:
        self.advance()
        self.expect("(", "'('", "'with'")
        hints = [self.hint()]
        while self.at(","):
            self.advance()
            hints.append(self.hint())
        self.expect(")", "')' or ','", "the hints")
        return tuple(hints)

    def hint(self) -> tuple[str, ast.Literal]:
        name = self.expect("ident", "a hint name", "'with ('").text
        if not self.at_op("="):
            raise self.fail(f"expected '=' after '{name}', found {self.token.describe()}")
        self.advance()
        token = self.token
        value = self.try_value()
        if value is None:
            raise self.fail(f"expected a value after '=', found {token.describe()}", token)
        return name, value

    # -- spanset expressions ----------------------------------------------------------------------

    def spanset_expr(self) -> ast.SpansetExpr:
        left = self.structural()
        while self.at_op(*ast.LOGICAL_OPS):
            op = self.advance().text
            right = self.structural()
            left = ast.SpansetOp(op, left, right)
        return left

    def structural(self) -> ast.SpansetExpr:
        left = self.spanset_atom()
        while self.at_op(*ast.STRUCTURAL_OPS):
            op_token = self.advance()
            right = self.spanset_atom()
            for side in (left, right):
                if _may_split(side):
                    raise self.fail(
                        f"'{op_token.text}' needs one spanset on each side; add '| coalesce()' after by()", op_token
                    )
            left = ast.SpansetOp(op_token.text, left, right)
        return left

    def spanset_atom(self) -> ast.SpansetExpr:
        token = self.token
        if token.kind == "{":
            self.advance()
            if self.at("}"):
                self.advance()
                return ast.SpansetFilter(ast.Const(True))
            expr = self.field_expr()
            if not self.at("}"):
                raise self.fail(f"expected '}}' or '&&' or '||' to continue the filter, found {self.token.describe()}")
            self.advance()
            return ast.SpansetFilter(expr)
        if token.kind == "(":
            self.advance()
            if self.at(")"):
                raise self.fail("expected a spanset such as '{}' inside '( )', found ')'")
            pipeline, _ = self.pipeline(top=False)
            self.expect(")", "')'", "the parenthesised spansets")
            if len(pipeline.stages) == 1 and isinstance(pipeline.stages[0], ast.SpansetFilter | ast.SpansetOp):
                return pipeline.stages[0]
            return pipeline
        raise self.fail(f"expected '{{' to start a spanset, found {token.describe()}")

    # -- field expressions (inside { }) -----------------------------------------------------------

    def field_expr(self) -> ast.FieldExpr:
        left = self.condition(self.comparison())
        while self.at_op("&&", "||"):
            op = self.advance().text
            if self.at("}") or self.at(")") or self.at("eof"):
                raise self.fail(f"expected a condition after '{op}', found {self.token.describe()}")
            right = self.condition(self.comparison())
            left = ast.And(left, right) if op == "&&" else ast.Or(left, right)
        return left

    def comparison(self) -> _Operand:
        left = self.unary()
        self.reject_arithmetic()
        if not self.at_op(*ast.COMPARISON_OPS):
            return left
        op_token = self.advance()
        if self.at("}") or self.at(")") or self.at("eof") or (self.at("op") and not self.at_op("-", "!")):
            raise self.fail(f"expected a value after '{op_token.text}', found {self.token.describe()}")
        right = self.unary()
        self.reject_arithmetic()
        return _Operand(left.pos, condition=self.build_compare(left, op_token, right))

    def reject_arithmetic(self) -> None:
        if self.at_op(*_ARITHMETIC):
            raise self.fail(f"arithmetic ('{self.token.text}') is not supported")

    def unary(self) -> _Operand:
        token = self.token
        if self.at_op("!"):
            self.advance()
            inner = self.unary()
            return _Operand(token.pos, condition=ast.Not(self.condition(inner)), negation=True)
        if token.kind == "(":
            self.advance()
            expr = self.field_expr()
            self.expect(")", "')'", "the parenthesised condition")
            return _Operand(token.pos, condition=expr)
        field = self.try_field()
        if field is not None:
            return _Operand(token.pos, field=field)
        literal = self.try_value()
        if literal is not None:
            return _Operand(token.pos, literal=literal)
        raise self.fail(f'expected a condition such as span.foo = "bar", found {token.describe()}')

    def condition(self, operand: _Operand) -> ast.FieldExpr:
        """An operand standing alone must be a condition: ``{ span.flag }``, ``{ true }``, ``!(...)``."""
        if operand.condition is not None:
            return operand.condition
        if operand.field is not None:
            return ast.IsTrue(operand.field)
        assert operand.literal is not None
        if operand.literal.kind == "bool":
            return ast.Const(bool(operand.literal.value))
        raise TraceQLError(f"expected a condition, found a lone {operand.literal.kind} value", self.text, operand.pos)

    def build_compare(self, left: _Operand, op_token: Token, right: _Operand) -> ast.Compare:
        op = op_token.text
        for side in (left, right):
            if side.negation:
                raise TraceQLError(
                    f"'!' applies to what directly follows it; write !(... {op} ...) to negate a comparison",
                    self.text,
                    side.pos,
                )
            if side.condition is not None:
                raise TraceQLError(f"cannot compare a condition with '{op}'", self.text, side.pos)
        if left.field is not None and right.field is not None:
            raise TraceQLError("comparing two fields is not supported", self.text, right.pos)
        if left.field is not None and right.literal is not None:
            return self.checked(ast.Compare(left.field, op, right.literal), op_token, right.pos)
        if right.field is not None and left.literal is not None:
            if op in ("=~", "!~"):
                raise TraceQLError(f"the regular expression must be on the right of '{op}'", self.text, left.pos)
            flipped = ast.Compare(right.field, _FLIPPED.get(op, op), left.literal)
            return self.checked(flipped, op_token, left.pos)
        raise TraceQLError(f"'{op}' needs an attribute or intrinsic on one side", self.text, left.pos)

    def checked(self, compare: ast.Compare, op_token: Token, value_pos: int) -> ast.Compare:
        op, value = compare.op, compare.value
        if value.kind == "nil":
            if op not in ("=", "!="):
                raise TraceQLError(f"nil can only be compared with = or !=, not '{op}'", self.text, op_token.pos)
            return compare
        if op in ("=~", "!~"):
            if value.kind != "string":
                raise TraceQLError(f"'{op}' needs a string (a regular expression) on the right", self.text, value_pos)
            assert isinstance(value.value, str)
            try:
                compile_regex(value.value)
            except RegexError as error:
                raise TraceQLError(
                    f"invalid regular expression {value.value!r}: {error}", self.text, value_pos
                ) from None
        elif value.kind in ("bool", "status", "kind") and op not in ("=", "!="):
            raise TraceQLError(
                f"{value.kind} values can only be compared with = or !=, not '{op}'", self.text, op_token.pos
            )
        if isinstance(compare.lhs, ast.IntrinsicField):
            self.check_intrinsic_type(compare.lhs, value, value_pos)
        return compare

    def check_intrinsic_type(self, field: ast.IntrinsicField, value: ast.Literal, value_pos: int) -> None:
        wanted = field.type
        if value.kind == wanted or (value.kind in _NUMERIC and wanted in _NUMERIC):
            return
        hint = ""
        if wanted in ("status", "kind"):
            words = ast.STATUSES if wanted == "status" else ast.KINDS
            hint = f"; write the bare word, e.g. {field.label} = {words[1] if wanted == 'status' else words[0]}"
        raise TraceQLError(
            f"{field.label} is of type {wanted}, it cannot be compared with a {value.kind} value{hint}",
            self.text,
            value_pos,
        )

    # -- fields and values ------------------------------------------------------------------------

    def try_field(self) -> ast.Field | None:
        token = self.token
        if token.kind == "attr":
            self.advance()
            scope, name = _pair(token)
            return ast.Attribute(scope, name)
        if token.kind == "intrinsic":
            scope, name = _pair(token)
            canonical = _SCOPED_INTRINSICS[scope].get(name)
            if canonical is None:
                known = ", ".join(f"{scope}:{word}" for word in _SCOPED_INTRINSICS[scope])
                raise self.fail(f"unknown intrinsic '{token.text}'; expected one of {known}")
            self.advance()
            return ast.IntrinsicField(canonical)
        if token.kind == "ident":
            if token.text in _LEGACY_INTRINSICS:
                self.advance()
                return ast.IntrinsicField(_LEGACY_INTRINSICS[token.text])
            if token.text in _UNSUPPORTED_WORDS:
                raise self.fail(f"the intrinsic '{token.text}' is not supported")
            if token.text not in _KEYWORD_VALUES:
                raise self.fail(
                    f"unknown identifier '{token.text}'; attributes need a scope: "
                    f"span.{token.text}, resource.{token.text} or .{token.text}"
                )
        return None

    def try_value(self) -> ast.Literal | None:
        token = self.token
        if token.kind == "string":
            self.advance()
            return ast.Literal("string", token.value)  # type: ignore[arg-type]
        if token.kind == "ident" and token.text in _KEYWORD_VALUES:
            self.advance()
            return _KEYWORD_VALUES[token.text]
        negative = self.at_op("-")
        if negative:
            self.advance()
            token = self.token
            if token.kind not in _NUMERIC:
                raise self.fail(f"expected a number or a duration after '-', found {token.describe()}")
        if token.kind in _NUMERIC:
            self.advance()
            number = token.value
            assert isinstance(number, int | float)
            return _number(token, -number if negative else number, self.text)
        return None


def _pair(token: Token) -> tuple[str, str]:
    value = token.value
    assert isinstance(value, tuple) and len(value) == 2
    return str(value[0]), str(value[1])


def _number(token: Token, number: float, text: str) -> ast.Literal:
    if token.kind == "float":
        return ast.Literal("float", float(number))
    if not -_INT64 <= number < _INT64:
        raise TraceQLError(f"{token.text} is out of the 64-bit integer range", text, token.pos)
    return ast.Literal(token.kind, int(number))


def _may_split(expr: ast.SpansetExpr) -> bool:
    """True when the expression can yield several spansets per trace (a by() not undone by coalesce())."""
    if isinstance(expr, ast.SpansetFilter):
        return False
    if isinstance(expr, ast.SpansetOp):
        return False  # && || and structural operators always produce one spanset per input spanset
    split = False
    for stage in expr.stages:
        if isinstance(stage, ast.By):
            split = True
        elif isinstance(stage, ast.Coalesce):
            split = False
        elif isinstance(stage, ast.Pipeline):
            split = split or _may_split(stage)
    return split
