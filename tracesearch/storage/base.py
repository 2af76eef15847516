"""The narrow contract between the pipeline / query services and a span store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tracesearch.model import Span
from tracesearch.query.conditions import TraceQuery


class StorageUnavailable(RuntimeError):
    """The store could not be reached or kept refusing (429/5xx) after our retries; retry later."""


@dataclass(slots=True)
class RejectedSpan:
    span: Span
    reason: str


@dataclass(slots=True)
class WriteResult:
    """Outcome of a write. ``stored`` counts spans that are durable, duplicates included;
    ``created`` lists the spans this write stored for the first time (a replay's 409s are not in it),
    so that per-span processing downstream counts each span once."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedSpan] = field(default_factory=list)
    created: list[Span] = field(default_factory=list)


class SpanWriter(Protocol):
    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Store spans idempotently; return only once every stored span is durable.

        A span already stored (same trace id, span id and kind) counts as stored. A span the store
        refuses for good (e.g. a mapping error) comes back in ``rejected`` with the reason. If the
        store is unreachable or overloaded past the retries, raise ``StorageUnavailable``: then
        nothing can be promised about the batch and the caller must retry it whole (safe, since
        writes are idempotent).
        """
        ...


class SpanReader(Protocol):
    def get_trace(self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None) -> list[Span]:
        """Every span of the trace (any size), sorted by start time; [] when unknown."""
        ...

    def find_traces(self, query: TraceQuery) -> list[list[Span]]:
        """Whole traces with at least one span matching every condition, newest first."""
        ...

    def services(self) -> list[str]: ...

    def operations(self, service: str, span_kind: str | None = None) -> list[tuple[str, str]]:
        """(span name, span kind) pairs of a service."""
        ...


@dataclass(frozen=True, slots=True)
class DependencyLink:
    """Calls from one service to another over a time range (Jaeger's and Zipkin's dependency link)."""

    parent: str
    child: str
    call_count: int
    error_count: int
