from collections.abc import Callable, Iterable
from typing import Any

def bulk_body(
    prefix: str, spans: Iterable[Any], fallback: Callable[[Any], bytes], carried: set[tuple[int, str]]
) -> bytes:
    """The `_bulk` body of `spans` (model spans), byte for byte `document.bulk_body(prefix, spans)`;
    `fallback(span)` gives the two lines of a span the compiled core declines; both add to `carried` the
    (day, key set id) pairs whose set the body carries."""

def decode_export_request(
    body: bytes,
    span_cls: Any,
    event_cls: Any,
    link_cls: Any,
    kinds: tuple[Any, ...],
    codes: tuple[Any, ...],
    make_resource: Callable[[dict[str, Any]], Any],
    make_scope: Callable[[str, str, dict[str, Any]], Any],
    admit: Callable[[Any, int, int, int], None],
) -> bool:
    """Decodes an OTLP/protobuf ExportTraceServiceRequest into model spans, handed to the callables in
    the Python decoder's order; False: the body is declined (the caller decodes it in Python)."""
