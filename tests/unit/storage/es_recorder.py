"""A stand-in for the Elasticsearch client that only records what tracesearch would send.

It answers every request with the emptiest answer the code accepts (or one a test scripts), so that a
golden test can follow a request through the real views, services and storage adapters and see each
Elasticsearch request body they build. Nothing here imitates what Elasticsearch would answer to a
query: behaviour is tested against the real Elasticsearch in tests/integration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

Answer = dict[str, Any]
Responder = Callable[[str, dict[str, Any]], Answer | None]
EMPTY_SEARCH: Answer = {"hits": {"hits": []}}


@dataclass
class _Response:
    body: Any


@dataclass
class RecordingElasticsearch:
    """``search``, ``terms_enum`` and ``bulk`` recorded in order; ``respond`` may script an answer to a
    search, ``enum`` to a ``_terms_enum`` (the terms it lists)."""

    respond: Responder = lambda index, body: None
    sent: list[dict[str, Any]] = field(default_factory=list)
    enum: Callable[[str, dict[str, Any]], list[str]] = lambda index, body: []

    def search(self, *, index: str, body: dict[str, Any], **params: Any) -> _Response:
        self.sent.append({"api": "search", "index": index, "body": orjson.loads(orjson.dumps(body))})
        return _Response(self.respond(index, body) or EMPTY_SEARCH)

    def terms_enum(self, *, index: str, **body: Any) -> _Response:
        self.sent.append({"api": "terms_enum", "index": index, "body": orjson.loads(orjson.dumps(body))})
        return _Response({"terms": self.enum(index, body), "complete": True})

    def bulk(self, *, operations: bytes | str, **params: Any) -> _Response:
        raw = operations.encode() if isinstance(operations, str) else operations
        lines = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        self.sent.append({"api": "bulk", "lines": lines})
        return _Response({"errors": False})
