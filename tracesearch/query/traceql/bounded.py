"""Parsing with a bound on nesting: what every entry point that takes TraceQL from outside uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, is_dataclass

from tracesearch.query.errors import InvalidQuery
from tracesearch.query.limits import MAX_TRACEQL_CONDITIONS, MAX_TRACEQL_LENGTH
from tracesearch.query.traceql.ast import Compare, IsTrue, Query
from tracesearch.query.traceql.grammar import parse

# Deeper expression trees than this are refused: each level is one more nested storage query (the
# JSON encoder stops at 255 levels) and one more recursion of the planner and evaluator.
MAX_QUERY_DEPTH = 128


def _shape(node: object) -> tuple[int, int]:
    """Nesting depth of a syntax tree and its number of comparisons (iterative: the tree may be deeper
    than Python's stack)."""
    deepest, conditions, stack = 0, 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        conditions += isinstance(current, Compare | IsTrue)
        children: Iterator[object]
        if is_dataclass(current):
            children = (getattr(current, f.name) for f in fields(current))
        elif isinstance(current, tuple):
            children = iter(current)
        else:
            continue
        stack.extend((child, depth + 1) for child in children if is_dataclass(child) or isinstance(child, tuple))
    return deepest, conditions


def parse_bounded(text: str) -> Query:
    """Refused before any storage call: a query text over ``MAX_TRACEQL_LENGTH`` characters (before it
    is even tokenized), deeper than ``MAX_QUERY_DEPTH`` or with more than ``MAX_TRACEQL_CONDITIONS``
    comparisons."""
    if len(text) > MAX_TRACEQL_LENGTH:
        raise InvalidQuery(f"query too long: {len(text)} characters, at most {MAX_TRACEQL_LENGTH}", field="q")
    query = parse(text)
    depth, conditions = _shape(query)
    if conditions > MAX_TRACEQL_CONDITIONS:
        raise InvalidQuery(
            f"query too large: {conditions} comparisons, at most {MAX_TRACEQL_CONDITIONS}; "
            'use =~ with alternatives (name =~ "a|b|c") instead of long || chains',
            field="q",
        )
    if depth > MAX_QUERY_DEPTH:
        raise InvalidQuery(
            f"query too deeply nested: more than {MAX_QUERY_DEPTH} levels of operators; "
            'use =~ with alternatives (name =~ "a|b|c") instead of long || chains',
            field="q",
        )
    return query
