"""``X-Tracesearch-Partial``: the header every read API sets on an answer that is not whole, saying why
(``time budget``, ``candidate bound``, ``spans per trace``), whatever its format can say besides (Tempo's
``completedJobs`` and ``status``, Jaeger's ``errors`` and ``warnings``; Zipkin's format has no place)."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response

from tracesearch.query.capped_trace import SPANS_PER_TRACE, CappedTrace

HEADER = "X-Tracesearch-Partial"
DOCUMENTED = {
    HEADER: {
        "description": "set when the answer is partial, saying why (comma-separated): `spans per trace` (a trace "
        "had more spans than TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE and holds its earliest only), `time budget`, "
        "`candidate bound`",
        "schema": {"type": "string"},
    }
}


def reasons(traces: Iterable[CappedTrace], *others: str) -> list[str]:
    """Why an answer holding ``traces`` is partial: the ``others`` given, then a cut trace if any."""
    found = [reason for reason in others if reason]
    if any(trace.truncated for trace in traces):
        found.append(SPANS_PER_TRACE)
    return found


def marked(response: Response, why: list[str]) -> Response:
    if why:
        response.headers[HEADER] = ", ".join(why)
    return response
