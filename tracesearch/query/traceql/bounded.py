"""Parsing with a bound on nesting: what every entry point that takes TraceQL from outside uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, is_dataclass

from tracesearch.query.errors import InvalidQuery
from tracesearch.query.traceql.ast import Query
from tracesearch.query.traceql.grammar import parse

# Deeper expression trees than this are refused: each level is one more nested storage query (the
# JSON encoder stops at 255 levels) and one more recursion of the planner and evaluator.
MAX_QUERY_DEPTH = 128


def _depth(node: object) -> int:
    """Nesting depth of a syntax tree (iterative: the tree may be deeper than Python's stack)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        children: Iterator[object]
        if is_dataclass(current):
            children = (getattr(current, f.name) for f in fields(current))
        elif isinstance(current, tuple):
            children = iter(current)
        else:
            continue
        stack.extend((child, depth + 1) for child in children if is_dataclass(child) or isinstance(child, tuple))
    return deepest


def parse_bounded(text: str) -> Query:
    query = parse(text)
    if _depth(query) > MAX_QUERY_DEPTH:
        raise InvalidQuery(
            f"query too deeply nested: more than {MAX_QUERY_DEPTH} levels of operators; "
            'use =~ with alternatives (name =~ "a|b|c") instead of long || chains',
            field="q",
        )
    return query
