"""What a TraceQL search finds, before any API shapes it: whole traces and their matching spansets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tracesearch.model import AttrValue, Span


@dataclass(slots=True)
class FoundSpanSet:
    """Spans of one span set to show (at most ``spss``), how many matched, and its own attributes."""

    spans: list[Span]
    matched: int
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    # Per span id: attributes to show beside the span (those the query named, or select()ed).
    span_attributes: dict[str, dict[str, AttrValue]] = field(default_factory=dict)


@dataclass(slots=True)
class FoundTrace:
    trace: Sequence[Span]
    spansets: list[FoundSpanSet]


@dataclass(slots=True)
class SearchResult:
    """Matching traces, newest first; ``complete`` False when the work bound cut the search short."""

    traces: list[FoundTrace] = field(default_factory=list)
    inspected_traces: int = 0
    inspected_spans: int = 0
    complete: bool = True
    partial_reason: str = ""  # when not complete: "time budget" or "candidate bound"
    # Inspected traces over the spans-per-trace limit, judged on their earliest spans only.
    truncated_traces: list[str] = field(default_factory=list)
