"""Queries that cannot hurt the service: RE2 regexes with Tempo's anchoring, and the bounds on the size
of a query (checked before any storage call)."""

from __future__ import annotations

import time

import pytest

from tracesearch.model import Resource, Scope, Span
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.limits import MAX_TRACEQL_CONDITIONS, MAX_TRACEQL_LENGTH
from tracesearch.query.regex import MAX_REGEX_LENGTH, RegexError, compile_pattern, fullmatch
from tracesearch.query.traceql import TraceQLError, evaluate, parse
from tracesearch.query.traceql.bounded import parse_bounded
from tracesearch.query.traceql.pushdown import plan

HOSTILE_VALUE = "a" * 50_000 + "b"


def span(**attributes: str) -> Span:
    return Span(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        name="GET /cart\nsecond line",
        start_ns=1,
        end_ns=2,
        resource=Resource({}, "svc"),
        scope=Scope(),
        attributes=dict(attributes),
    )


def matched(q: str, s: Span) -> bool:
    return any(found.spans for found in evaluate(parse(q), [s]))


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    began = time.perf_counter()
    assert not matched('{ span.x =~ "(a+)+$" }', span(x=HOSTILE_VALUE))
    assert not matched('{ span.x =~ "(a|aa)*c" }', span(x=HOSTILE_VALUE))
    assert matched('{ span.x =~ "(a+)+b" }', span(x=HOSTILE_VALUE))
    elapsed = time.perf_counter() - began
    print(f"3 hostile matches over {len(HOSTILE_VALUE)} characters: {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0  # Python's re needs longer than the age of the universe for the first one


@pytest.mark.parametrize(
    ("q", "value", "expected"),
    [
        ('{ span.x =~ "GET" }', "GET /cart", False),  # fully anchored, as in Tempo
        ('{ span.x =~ "GET.*" }', "GET /cart", True),
        ('{ span.x =~ "a|ab" }', "ab", True),  # anchoring covers every alternative
        ('{ span.x !~ "GET.*" }', "GET /cart", False),
        ('{ span.x =~ "(?i)get.*" }', "GET /cart", True),
        ('{ span.x =~ "a.b" }', "a\nb", False),  # . is not a newline (Go's regexp)
        ('{ span.x =~ "(?s)a.b" }', "a\nb", True),
        ('{ span.x =~ "\\\\d+" }', "١٢", False),  # \d is ASCII, as in Go, not Python's Unicode digits
        ('{ span.x =~ "\\\\d+" }', "12", True),
    ],
)
def test_regex_semantics_are_tempos(q: str, value: str, expected: bool) -> None:
    assert matched(q, span(x=value)) is expected


def test_name_regex_is_anchored_and_dot_stops_at_newlines() -> None:
    assert not matched('{ name =~ "GET.*" }', span())
    assert matched('{ name =~ "GET.*\\n.*" }', span())


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("(a)\\\\1", "backreferences"),
        ("(?=a)a", "lookahead"),
        ("(?!a)b", "negative lookahead"),
        ("(?<=a)b", "lookbehind"),
        ("a{1001}", "invalid repetition size"),
        ("[", "missing ]"),
    ],
)
def test_patterns_re2_cannot_run_are_a_clear_traceql_error(pattern: str, says: str) -> None:
    with pytest.raises(TraceQLError) as refused:
        parse(f'{{ span.x =~ "{pattern}" }}')
    message = str(refused.value)
    assert "invalid regular expression" in message and says in message
    assert repr(pattern.replace("\\\\", "\\")) in message  # names the pattern


def test_a_pattern_longer_than_elasticsearchs_limit_is_refused() -> None:
    with pytest.raises(RegexError, match=f"at most {MAX_REGEX_LENGTH}"):
        compile_pattern("a" * (MAX_REGEX_LENGTH + 1))
    with pytest.raises(TraceQLError, match="at most 1000"):
        parse('{ span.x =~ "' + "a" * 1001 + '" }')


def test_long_portable_patterns_are_left_to_the_evaluator() -> None:
    near = "a" * (MAX_REGEX_LENGTH - 10)
    pushed = plan(parse('{ span.x =~ "' + near + '" }').spansets)
    assert "AttrMatches" not in repr(pushed.condition)  # too long once prefixed with the name for Lucene
    short = plan(parse('{ span.x =~ "ab.*" }').spansets)
    assert "AttrMatches" in repr(short.condition)


def test_the_in_memory_lucene_twin_lets_dot_match_newlines() -> None:
    assert fullmatch(compile_pattern("a.b", dot_all=True), "a\nb")
    assert not fullmatch(compile_pattern("a.b"), "a\nb")


def test_a_lone_surrogate_does_not_match_and_does_not_raise() -> None:
    assert not fullmatch(compile_pattern(".*"), "a\ud800")


def test_query_text_too_long_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidQuery, match="query too long") as refused:
        parse_bounded("{ " + " " * MAX_TRACEQL_LENGTH + "}")
    assert refused.value.field == "q"


def _grouped(conditions: int) -> str:
    """``(a || b || ...) && (...)`` in groups of ten: many conditions, little depth."""
    terms = [f'span.a = "{i}"' for i in range(conditions)]
    return "{ " + " && ".join("(" + " || ".join(terms[i : i + 10]) + ")" for i in range(0, conditions, 10)) + " }"


def test_too_many_conditions_are_refused() -> None:
    parse_bounded(_grouped(MAX_TRACEQL_CONDITIONS))
    with pytest.raises(InvalidQuery, match="comparisons, at most") as refused:
        parse_bounded(_grouped(MAX_TRACEQL_CONDITIONS + 1))
    assert refused.value.field == "q"
