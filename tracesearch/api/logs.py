"""``GET /api/v1/traces/{trace_id}/logs``: the log lines of a trace, from the team's logs indices.

Our own API (no other project's to follow): the trace id as every trace endpoint takes it (1 to 32 hex
digits, any case), times as Tempo's (unix seconds, nanoseconds or RFC 3339), errors in our JSON shape.
Each line is its document as the logs index holds it (ECS fields untouched), with ``_index`` and ``_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Response
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from tracesearch.api import errors
from tracesearch.api.blueprint import Blueprint, ErrorFormat
from tracesearch.api.context import trace_logs
from tracesearch.api.params import TRACE_ID_PATH, CappedInt, UnixTime
from tracesearch.api.params import trace_id as parse_trace_id
from tracesearch.services.trace_logs import TraceLogs

DEFAULT_LIMIT = 500
MAX_LIMIT = 10_000  # Elasticsearch's index.max_result_window: one page, no scrolling
NS_PER_MS = 1_000_000
_TIME = "unix seconds, nanoseconds or RFC 3339"

bp = Blueprint(
    "trace_logs",
    __name__,
    description="Log lines of a trace, from the logs indices (TRACESEARCH_LOGS_INDEX); JSON errors",
    errors=ErrorFormat(errors.render_json, errors.JsonError),
)


class TraceLogsParams(Schema):
    class Meta:
        unknown = EXCLUDE

    start = UnixTime(
        load_default=None,
        metadata={
            "description": f"{_TIME}; narrows the trace's lookup and, when the trace is not stored, starts the "
            "search (default: end minus TRACESEARCH_TRACE_LOOKBACK)"
        },
    )
    end = UnixTime(
        load_default=None,
        metadata={"description": f"{_TIME}; as start, ends the search of a trace not stored (default: now)"},
    )
    limit = CappedInt(
        MAX_LIMIT,
        load_default=DEFAULT_LIMIT,
        metadata={"description": "at most this many lines, the oldest; truncated says when there were more"},
    )

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["start"] is not None and data["end"] is not None and data["end"] < data["start"]:
            raise ValidationError("must not be before start", "end")


class TraceLogsAnswer(Schema):
    traceId = fields.String(metadata={"description": "the trace id, 32 lowercase hex digits"})
    index = fields.String(metadata={"description": "the index pattern searched (TRACESEARCH_LOGS_INDEX)"})
    field = fields.String(metadata={"description": "the trace-id field (TRACESEARCH_LOGS_TRACE_ID_FIELD)"})
    start = fields.String(metadata={"description": "start of the window searched, RFC 3339 (ms)"})
    end = fields.String(metadata={"description": "end of the window searched, RFC 3339 (ms)"})
    window = fields.String(
        metadata={
            "description": "trace: the stored trace's spans ± TRACESEARCH_LOGS_TIME_MARGIN; request: start/end "
            "(the trace is not stored); lookback: TRACESEARCH_TRACE_LOOKBACK (neither)",
            "enum": ["trace", "request", "lookback"],
        }
    )
    logs = fields.List(
        fields.Dict(), metadata={"description": "each line's document as stored, with _index and _id; oldest first"}
    )
    truncated = fields.Boolean(metadata={"description": "more lines matched than limit"})


def _rfc3339_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _answer(found: TraceLogs) -> dict[str, Any]:
    return {
        "traceId": found.trace_id,
        "index": found.index,
        "field": found.field,
        # The whole milliseconds searched (the store rounds the window out to them).
        "start": _rfc3339_ms(found.start_ns // NS_PER_MS),
        "end": _rfc3339_ms(-(-found.end_ns // NS_PER_MS)),
        "window": found.window,
        "logs": found.lines,
        "truncated": found.truncated,
    }


@bp.get("/api/v1/traces/<trace_id>/logs", parameters=[TRACE_ID_PATH])
@bp.query(TraceLogsParams)
@bp.answers("the trace's log lines, oldest first (none: an empty list, also when no index matches)", TraceLogsAnswer)
@bp.fails(400, 503)
def get_trace_logs(args: dict[str, Any], trace_id: str) -> Response:
    """Log lines of a trace"""
    found = trace_logs().logs(parse_trace_id(trace_id, "trace_id"), args["start"], args["end"], args["limit"])
    return Response(orjson.dumps(_answer(found)), 200, mimetype="application/json")
