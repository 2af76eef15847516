"""The error of a query that cannot be run as written; the API layer answers it with a 400."""

from __future__ import annotations


class InvalidQuery(ValueError):
    """What was wrong and, when it is one parameter's fault, which (``field``)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


class TooManyQueries(RuntimeError):
    """Every query slot of the process is taken (``TRACESEARCH_MAX_CONCURRENT_QUERIES``); the API layer
    answers it with a 429 and ``Retry-After``."""
