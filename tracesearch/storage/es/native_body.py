"""Which code builds the ``_bulk`` bodies (and decodes OTLP protobuf): the compiled core or the
pure-Python reference.

The compiled core (``native/``, the ``tracesearch_native`` module, Rust through PyO3) returns the same
bytes as ``document.bulk_body`` (the differential tests in ``tests/unit/storage/test_native_body.py``
compare them) at a fraction of the CPU. It is optional: a machine without cargo runs the Python path.
A span the core does not handle exactly as the Python path does (a subclass of str among its values,
an integer beyond 64 bits, ...) it hands back to ``to_bulk_lines``, so such a span too gives the
Python path's bytes, or raises its error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType

from tracesearch.model import Span
from tracesearch.storage.es.document import bulk_body, to_bulk_lines
from tracesearch.storage.es.indices import span_index_for

BodyBuilder = Callable[[str, Sequence[Span]], bytes]
MODES = ("auto", "on", "off")


class NativeUnavailable(RuntimeError):
    """TRACESEARCH_NATIVE=on, but the compiled core is not installed."""


def native_module() -> ModuleType | None:
    """The compiled core, or None where it was not built."""
    try:
        return importlib.import_module("tracesearch_native")
    except ImportError:
        return None


def _python_lines(prefix: str, carried: set[tuple[int, str]], span: Span) -> bytes:
    return to_bulk_lines(span_index_for(prefix, span.start_ns), span, carried)


def native_bulk_body(module: ModuleType) -> BodyBuilder:
    def build(prefix: str, spans: Sequence[Span]) -> bytes:
        # The key sets the body carries so far (``to_document``), shared by the core and the Python path.
        carried: set[tuple[int, str]] = set()
        body: bytes = module.bulk_body(prefix, spans, partial(_python_lines, prefix, carried), carried)
        return body

    return build


def native_for(mode: str) -> ModuleType | None:
    """The compiled core a TRACESEARCH_NATIVE mode (``auto``, ``on``, ``off``) uses, or None."""
    if mode not in MODES:
        raise ValueError(f"native mode {mode!r}: use one of {', '.join(MODES)}")
    module = native_module() if mode != "off" else None
    if module is None and mode == "on":
        raise NativeUnavailable(
            "TRACESEARCH_NATIVE=on but the compiled core (tracesearch_native) is not installed: "
            "run `make venv` on a machine with cargo (rustup), or set TRACESEARCH_NATIVE=auto"
        )
    return module


def body_builder(mode: str) -> BodyBuilder:
    """The bulk body builder for a TRACESEARCH_NATIVE mode."""
    module = native_for(mode)
    return bulk_body if module is None else native_bulk_body(module)
