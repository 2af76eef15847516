"""TraceQL parsing: the tree the planner receives, literals, precedence, errors, and a fuzz test."""

import contextlib
import random
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.traceql_fixture import CONFORMANCE, CONFORMANCE_SPANS
from tracesearch.query.traceql import (
    Aggregate,
    And,
    Attribute,
    By,
    Coalesce,
    Compare,
    Const,
    FieldExpr,
    IntrinsicField,
    IsTrue,
    Literal,
    MetricsQuery,
    Not,
    Or,
    Pipeline,
    Query,
    Select,
    SpansetFilter,
    SpansetOp,
    TraceQLError,
    parse,
)

MS = 1_000_000
S = TypeVar("S", SpansetFilter, SpansetOp, Aggregate)


def only_filter(query: str) -> FieldExpr:
    parsed = parse(query)
    assert parsed.metrics is None
    [stage] = parsed.spansets.stages
    assert isinstance(stage, SpansetFilter)
    return stage.expr


def compare_of(query: str) -> Compare:
    expr = only_filter(query)
    assert isinstance(expr, Compare)
    return expr


def value_of(query: str) -> Literal:
    return compare_of(query).value


def stage_of(query: str, index: int, kind: type[S]) -> S:
    stage = parse(query).spansets.stages[index]
    assert isinstance(stage, kind)
    return stage


def metrics_of(query: str) -> MetricsQuery:
    metrics = parse(query).metrics
    assert metrics is not None
    return metrics


def test_empty_filter_matches_all() -> None:
    assert parse("{}") == Query(Pipeline((SpansetFilter(Const(True)),)))
    assert only_filter("{ true }") == Const(True)


def test_attribute_scopes_and_names() -> None:
    assert only_filter('{ span.http.request.method = "GET" }') == Compare(
        Attribute("span", "http.request.method"), "=", Literal("string", "GET")
    )
    assert compare_of("{ resource.service.name = `a` }").lhs == Attribute("resource", "service.name")
    assert compare_of("{ .foo = 1 }").lhs == Attribute("", "foo")
    assert compare_of("{ event.exception.type = 1 }").lhs == Attribute("event", "exception.type")
    assert compare_of("{ link.ref = 1 }").lhs == Attribute("link", "ref")
    assert compare_of("{ instrumentation.lang = 1 }").lhs == Attribute("instrumentation", "lang")
    assert compare_of('{ span."attr with space" = 1 }').lhs == Attribute("span", "attr with space")
    assert compare_of('{ span.a."b.c" = 1 }').lhs == Attribute("span", "a.b.c")
    assert compare_of('{ span."q\\"uote" = 1 }').lhs == Attribute("span", 'q"uote')
    assert compare_of("{ span.foo-bar = 1 }").lhs == Attribute("span", "foo-bar")
    assert compare_of("{ span.status = 1 }").lhs == Attribute("span", "status")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("name", "name"), ("span:name", "name"), ("status", "status"), ("span:status", "status"),
        ("statusMessage", "statusMessage"), ("span:statusMessage", "statusMessage"), ("kind", "kind"),
        ("span:kind", "kind"), ("duration", "duration"), ("span:duration", "duration"),
        ("childCount", "childCount"), ("span:childCount", "childCount"), ("span:id", "span:id"),
        ("span:parentID", "span:parentID"), ("trace:id", "trace:id"), ("rootName", "rootName"),
        ("trace:rootName", "rootName"), ("rootServiceName", "rootServiceName"),
        ("trace:rootService", "rootServiceName"), ("traceDuration", "traceDuration"),
        ("trace:duration", "traceDuration"), ("event:name", "event:name"),
        ("event:timeSinceStart", "event:timeSinceStart"), ("link:traceID", "link:traceID"),
        ("link:spanID", "link:spanID"), ("instrumentation:name", "instrumentation:name"),
        ("instrumentation:version", "instrumentation:version"),
    ],
)  # fmt: skip
def test_intrinsics_are_normalised(text: str, canonical: str) -> None:
    assert compare_of(f"{{ {text} != nil }}").lhs == IntrinsicField(canonical)


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ('"a\\"b\\\\c"', Literal("string", 'a"b\\c')),
        ("`raw \\d+`", Literal("string", "raw \\d+")),
        ('"\\d+ \\{id\\}"', Literal("string", "\\d+ \\{id\\}")),
        ('"tab\\there"', Literal("string", "tab\there")),
        ("42", Literal("int", 42)),
        ("-42", Literal("int", -42)),
        ("1.5", Literal("float", 1.5)),
        (".95", Literal("float", 0.95)),
        ("- 0.5", Literal("float", -0.5)),
        ("1e3", Literal("float", 1000.0)),
        ("true", Literal("bool", True)),
        ("false", Literal("bool", False)),
        ("nil", Literal("nil", None)),
        ("error", Literal("status", "error")),
        ("unset", Literal("status", "unset")),
        ("server", Literal("kind", "server")),
        ("unspecified", Literal("kind", "unspecified")),
        ("maxInt", Literal("int", 2**63 - 1)),
        ("minInt", Literal("int", -(2**63))),
    ],
)
def test_literals(text: str, literal: Literal) -> None:
    assert value_of(f"{{ span.x = {text} }}") == literal


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("5ns", 5), ("250us", 250_000), ("100µs", 100_000), ("20ms", 20 * MS), ("1.5s", 1_500 * MS),
        ("2m", 120_000 * MS), ("1h", 3_600_000 * MS), ("1h30m", 5_400_000 * MS), ("-5s", -5_000 * MS),
        (".5ms", MS // 2),
    ],
)  # fmt: skip
def test_durations_are_nanoseconds(text: str, ns: int) -> None:
    assert value_of(f"{{ duration > {text} }}") == Literal("duration", ns)


def test_value_on_the_left_is_flipped() -> None:
    assert only_filter("{ 5 < span.x }") == Compare(Attribute("span", "x"), ">", Literal("int", 5))
    assert only_filter("{ nil = span.x }") == Compare(Attribute("span", "x"), "=", Literal("nil", None))


def test_and_or_share_one_level_left_to_right_as_in_tempo() -> None:
    a, b, c = (IsTrue(Attribute("", n)) for n in "abc")
    assert only_filter("{ .a || .b && .c }") == And(Or(a, b), c)
    assert only_filter("{ .a && .b || .c }") == Or(And(a, b), c)
    assert only_filter("{ .a || (.b && .c) }") == Or(a, And(b, c))


def test_not_binds_to_what_follows() -> None:
    compare = Compare(Attribute("span", "a"), "=", Literal("int", 1))
    assert only_filter("{ !(span.a = 1) && .b }") == And(Not(compare), IsTrue(Attribute("", "b")))
    assert only_filter("{ !!span.flag }") == Not(Not(IsTrue(Attribute("span", "flag"))))


def test_comparisons_bind_tighter_than_and() -> None:
    expr = only_filter('{ span.a = 1 && name != "x" }')
    assert expr == And(
        Compare(Attribute("span", "a"), "=", Literal("int", 1)),
        Compare(IntrinsicField("name"), "!=", Literal("string", "x")),
    )


def filters(*names: str) -> list[SpansetFilter]:
    return [SpansetFilter(IsTrue(Attribute("", n))) for n in names]


def test_structural_binds_tighter_than_logical() -> None:
    a, b, c = filters("a", "b", "c")
    assert parse("{ .a } && { .b } >> { .c }").spansets.stages == (SpansetOp("&&", a, SpansetOp(">>", b, c)),)
    assert parse("{ .a } >> { .b } && { .c }").spansets.stages == (SpansetOp("&&", SpansetOp(">>", a, b), c),)
    assert parse("{ .a } > { .b } > { .c }").spansets.stages == (SpansetOp(">", SpansetOp(">", a, b), c),)
    assert parse("{ .a } || { .b } && { .c }").spansets.stages == (SpansetOp("&&", SpansetOp("||", a, b), c),)
    assert parse("{ .a } || ({ .b } && { .c })").spansets.stages == (SpansetOp("||", a, SpansetOp("&&", b, c)),)


@pytest.mark.parametrize("op", [">", ">>", "<", "<<", "~", "&>", "&>>", "&<", "&<<", "&~", "!>", "!>>", "!<", "!<<",
                                "!~", "&&", "||"])  # fmt: skip
def test_every_spanset_operator(op: str) -> None:
    a, b = filters("a", "b")
    assert parse(f"{{ .a }} {op} {{ .b }}").spansets.stages == (SpansetOp(op, a, b),)


def test_not_regex_inside_a_filter_and_not_sibling_between_filters() -> None:
    assert compare_of('{ span.a !~ "x.*" }').op == "!~"
    assert stage_of("{ .a }!~{ .b }", 0, SpansetOp).op == "!~"


def test_pipelines() -> None:
    query = parse(
        "{ status = error } | by(resource.service.name) | count() > 1 | avg(duration) >= 20ms"
        " | coalesce() | select(span.http.url, name) | { kind = server }"
    )
    stages = query.spansets.stages
    assert stages[1] == By((Attribute("resource", "service.name"),))
    assert stages[2] == Aggregate("count", None, ">", Literal("int", 1))
    assert stages[3] == Aggregate("avg", IntrinsicField("duration"), ">=", Literal("duration", 20 * MS))
    assert stages[4] == Coalesce()
    assert stages[5] == Select((Attribute("span", "http.url"), IntrinsicField("name")))
    assert isinstance(stages[6], SpansetFilter)


def test_bare_aggregate_and_flipped_aggregate() -> None:
    assert parse("count() > 10").spansets.stages == (Aggregate("count", None, ">", Literal("int", 10)),)
    assert parse("{} | 2 < count()").spansets.stages[1] == Aggregate("count", None, ">", Literal("int", 2))
    assert stage_of("{} | sum(span.bytes) > 1.5", 1, Aggregate).value == Literal("float", 1.5)


def test_parenthesised_pipelines_combine() -> None:
    query = parse("({ .a } | count() > 1) && { .b }")
    [op] = query.spansets.stages
    assert isinstance(op, SpansetOp) and isinstance(op.left, Pipeline)
    stage = op.left.stages[1]
    assert isinstance(stage, Aggregate) and stage.func == "count"


def test_metrics_queries() -> None:
    query = parse('{ resource.service.name = "frontend" } | quantile_over_time(duration, .5, .95, 0.99) by (name)')
    assert query.metrics == MetricsQuery(
        query.spansets, "quantile_over_time", IntrinsicField("duration"), (0.5, 0.95, 0.99), (IntrinsicField("name"),)
    )
    assert parse("{} | rate()").metrics == MetricsQuery(Pipeline((SpansetFilter(Const(True)),)), "rate", None, (), ())
    rate = metrics_of("{ status = error } | rate() by (resource.service.name, span.http.route)")
    assert rate.by == (Attribute("resource", "service.name"), Attribute("span", "http.route"))
    for func in ("histogram_over_time", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time"):
        assert metrics_of(f"{{}} | {func}(span:duration)").field == IntrinsicField("duration")
    assert metrics_of("{} | count_over_time()").func == "count_over_time"


def test_labels_are_how_tempo_prints_fields() -> None:
    assert Attribute("span", "http.url").label == "span.http.url"
    assert Attribute("", "a").label == ".a"
    assert Attribute("span", 'a "b"').label == 'span."a \\"b\\""'
    assert stage_of("{} | avg(span:duration) > 1", 1, Aggregate).label == "avg(duration)"
    assert stage_of("{} | count() > 1", 1, Aggregate).label == "count()"


def test_hints() -> None:
    assert parse("{} with (most_recent=true)").hints == (("most_recent", Literal("bool", True)),)


def test_multiline_queries() -> None:
    query = parse('{\n  resource.service.name = "frontend" &&\n  name = "POST /api/orders"\n}')
    stage = query.spansets.stages[0]
    assert isinstance(stage, SpansetFilter) and isinstance(stage.expr, And)


@pytest.mark.parametrize("query", [q for q, _ in CONFORMANCE] + [q for q, _ in CONFORMANCE_SPANS])
def test_every_conformance_query_parses(query: str) -> None:
    parse(query)


# -- errors ---------------------------------------------------------------------------------------------

ERRORS = [
    ("{ span.foo = ", 13, "expected a value after '=', found the end of the query"),
    ("{ span.foo = }", 13, "expected a value after '=', found '}'"),
    ('{ span.foo = "bar"', 18, "expected '}' or '&&' or '||' to continue the filter, found the end of the query"),
    ('{ span.foo = "bar }', 13, "unterminated string"),
    ('{ span.foo == "bar" }', 12, "expected a value after '=', found '='"),
    ("{ duration > 5xs }", 13, "invalid duration '5xs'"),
    ("{ span:foo = 1 }", 2, "unknown intrinsic 'span:foo'"),
    ("{ foo = 1 }", 2, "unknown identifier 'foo'; attributes need a scope: span.foo, resource.foo or .foo"),
    ('{ span.a =~ "(" }', 12, "invalid regular expression '('"),
    ("{ span.a = 1 } garbage", 15, "unexpected 'garbage' after the end of the query"),
    ("{ span.a = 1 } |", 16, "expected a pipeline stage after '|', found the end of the query"),
    ("{ span.a = 1 } | | count() > 1", 17, "expected a pipeline stage after '|', found '|'"),
    ('{ status = "error" }', 11, "status is of type status, it cannot be compared with a string value; write"),
    ('{ duration > "1s" }', 13, "duration is of type duration, it cannot be compared with a string value"),
    ("{ span.a <> 1 }", 10, "expected a value after '<', found '>'"),
    ("{ span.a ! 1 }", 9, "expected '}' or '&&' or '||' to continue the filter, found '!'"),
    ("{ span.a > 10 * 1024 }", 14, "arithmetic ('*') is not supported"),
    ("{ span.a & span.b }", 9, "did you mean '&&'"),
    ("{ !span.a = 1 }", 2, "write !(... = ...)"),
    ("{ span.a = span.b }", 11, "comparing two fields is not supported"),
    ("{ span.a > true }", 9, "bool values can only be compared with = or !="),
    ("{ span.a > nil }", 9, "nil can only be compared with = or !="),
    ("{ span.a =~ 5 }", 12, "needs a string (a regular expression)"),
    ('{ span.a = "abc\\', 11, "unterminated string: missing the closing '\"'"),
    ("{ span. = 1 }", 7, "expected an attribute name after 'span.'"),
    ("{ foo.bar = 1 }", 2, "unknown identifier 'foo'"),
    ("{ parent.foo = 1 }", 2, "the 'parent.' scope is not supported"),
    ("{ .a } > { .b", 13, "expected '}'"),
    ("({ .a }", 7, "expected ')' after the parenthesised spansets, found the end of the query"),
    ("", 0, "the query is empty"),
    ("{ span.a = 1 } | count() >", 26, "expected a number or a duration after '>'"),
    ("{ } | avg() > 1", 10, "expected an attribute or intrinsic after 'avg('"),
    ("{ } | rate() | topk(5)", 13, "not supported"),
    ("({ .a } | by(.b)) > { .c }", 18, "needs one spanset on each side"),
    ("{ } | quantile_over_time(duration, 2)", 35, "a quantile must be between 0 and 1"),
    ("{ span.a = 99999999999999999999 }", 11, "out of the 64-bit integer range"),
    ("{ span.a = 1 &&}", 15, "expected a condition after '&&', found '}'"),
    # Found by the API fuzz (Tempo tag values' q): digits isdigit() takes but no number is (were a 500).
    ("{ .a = ³ }", 7, "unexpected character '³'"),
    ("{ .a = ٣ }", 7, "unexpected character '٣'"),
    ("{ .a = 1² }", 8, "unexpected character '²'"),
]


@pytest.mark.parametrize(("query", "position", "message"), ERRORS, ids=[q or "<empty>" for q, _, _ in ERRORS])
def test_errors_say_where_and_what(query: str, position: int, message: str) -> None:
    with pytest.raises(TraceQLError) as caught:
        parse(query)
    error = caught.value
    assert message in str(error)
    assert error.position == position
    assert str(error).startswith(f"line 1, column {position + 1}: ")


def test_error_lines_and_columns_on_multiline_queries() -> None:
    with pytest.raises(TraceQLError) as caught:
        parse("{\n  span.a = 1 &&\n  span.b = }")
    assert (caught.value.line, caught.value.column) == (3, 12)
    assert str(caught.value) == "line 3, column 12: expected a value after '=', found '}'"


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse("{")


# -- fuzz: nothing but TraceQLError may come out of parse() ------------------------------------------------

ALPHABET = [
    *'{}()|&!=~<>.,"`\\ -+*/%^:', "span.", "resource.", ".a", "name", "status", "error", "1", "1.5", "20ms",
    "count()", "by(", "select(", "coalesce()", "rate()", "&&", "||", ">>", "!~", "=~", "nil", "true", "µs", "\n",
    "with", "span:", "trace:id", '"x"', "`y`", "quantile_over_time(", "-", "avg(", "\t", "é",
]  # fmt: skip


def test_fuzz_random_token_soup_only_raises_traceql_errors() -> None:
    rng = random.Random(20240601)
    for _ in range(4000):
        query = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 25)))
        try:
            parse(query)
        except TraceQLError as error:
            assert 0 <= error.position <= len(query)


@given(st.lists(st.one_of(st.sampled_from(ALPHABET), st.text(max_size=3)), max_size=20))
def test_fuzz_tokens_and_any_text_only_raise_traceql_errors(parts: list[str]) -> None:
    query = "".join(parts)
    try:
        parse(query)
    except TraceQLError as error:
        assert 0 <= error.position <= len(query)


def test_fuzz_truncated_and_mutated_valid_queries() -> None:
    rng = random.Random(7)
    sources = [q for q, _ in CONFORMANCE] + ["{} | quantile_over_time(duration, .5, .9) by (name) with (a=1)"]
    for query in sources:
        for cut in range(len(query)):
            for candidate in (query[:cut], query[:cut] + query[cut + 1 :], query[:cut] + rng.choice(ALPHABET)):
                with contextlib.suppress(TraceQLError):
                    parse(candidate)


def test_deep_nesting_is_a_traceql_error() -> None:
    with pytest.raises(TraceQLError):
        parse("{ " + "(" * 5000 + "span.a = 1" + ")" * 5000 + " }")
