from collections.abc import Callable, Iterable
from typing import Any

def bulk_body(prefix: str, spans: Iterable[Any], fallback: Callable[[Any], bytes]) -> bytes:
    """The `_bulk` body of `spans` (model spans), byte for byte `document.bulk_body(prefix, spans)`;
    `fallback(span)` gives the two lines of a span the compiled core declines."""
