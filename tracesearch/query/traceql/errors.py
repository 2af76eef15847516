"""The one exception the TraceQL parser raises, with where in the query the problem is."""

from __future__ import annotations


class TraceQLError(ValueError):
    """A query that cannot be parsed or is not supported.

    ``position`` is the 0-based character offset in the query, ``line``/``column`` are 1-based, and
    ``str(error)`` reads ``line 1, column 14: expected a value after '=', found '}'``.
    """

    def __init__(self, reason: str, query: str, position: int) -> None:
        position = max(0, min(position, len(query)))
        before = query[:position]
        self.reason = reason
        self.position = position
        self.line = before.count("\n") + 1
        self.column = position - (before.rfind("\n") + 1) + 1
        super().__init__(f"line {self.line}, column {self.column}: {reason}")
