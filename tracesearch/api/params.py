"""Request parameters shared by the query API surfaces (Jaeger, Tempo, Zipkin)."""

from __future__ import annotations

from tracesearch.api.http_errors import BadRequest
from tracesearch.model import is_hex, pad_trace_id


def trace_id(text: str, field: str = "traceID") -> str:
    """A trace id of 1 to 32 hex digits (Zipkin's 16-digit ids included), as the 32-digit canonical form."""
    text = text.strip().lower()
    if not text or len(text) > 32 or not is_hex(text):
        raise BadRequest(f"{field}: {text[:64]!r} is not a trace id of 1 to 32 hex digits", field=field)
    return pad_trace_id(text)
