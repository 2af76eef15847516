"""Zipkin v2 span receiver: ``POST /api/v2/spans`` in JSON (default) or proto3; 202 when stored."""

from __future__ import annotations

from flask import Response, request

from tracesearch import prometheus
from tracesearch.api import errors
from tracesearch.api.blueprint import Blueprint, ErrorFormat
from tracesearch.api.context import services
from tracesearch.api.http_errors import BadRequest, UnsupportedMediaType
from tracesearch.codecs import zipkin_json, zipkin_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.pipeline.receive import receive
from tracesearch.receivers.body import decompress, media_type, read_raw

bp = Blueprint(
    "zipkin_ingest",
    __name__,
    description="Zipkin v2 span receiver",
    errors=ErrorFormat(errors.render_json, errors.JsonError),
)
PROTOBUF = "application/x-protobuf"
_DECODERS = {
    "": zipkin_json.decode_spans,
    "application/json": zipkin_json.decode_spans,
    PROTOBUF: zipkin_proto.decode_spans,
    "application/protobuf": zipkin_proto.decode_spans,
}


@bp.after_request
def count_request(response: Response) -> Response:
    transport = "zipkin_proto" if "protobuf" in media_type(request.content_type) else "zipkin_json"
    prometheus.REQUESTS.labels(transport, response.status_code).inc()
    return response


@bp.post("/api/v2/spans")
@bp.body("a JSON list of Zipkin v2 spans (the default) or a proto3 ListOfSpans", ["application/json", PROTOBUF])
@bp.answers("stored", status=202)
@bp.fails(400, 413, 415, 429, 503)
def post_spans() -> Response:
    """Zipkin v2 spans

    A span that cannot be stored makes the answer a 400 that names it; the others are stored (Zipkin has
    no partial success).
    """
    components = services()
    kind = media_type(request.content_type)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not supported; use application/json or application/x-protobuf",
            field="Content-Type",
        )
    limit = components.settings.max_request_bytes
    body = decompress(
        read_raw(request.stream, request.content_length, limit), request.headers.get("Content-Encoding", ""), limit
    )
    try:
        batch = decoder(body, components.receive_limits())
    except DecodeError as exc:
        raise BadRequest(f"cannot decode Zipkin v2 spans: {exc}", field=exc.field) from exc
    components.ingest_limiter.admit(len(batch.spans) + len(batch.rejected))
    outcome = receive(components.sink, batch, "zipkin_proto" if "protobuf" in kind else "zipkin_json")
    if outcome.rejected:
        # Zipkin has no partial success: say exactly which spans were refused; the others are stored.
        raise BadRequest(
            f"{len(outcome.rejected)} spans rejected, {outcome.accepted} stored: {outcome.summary()}", field="spans"
        )
    return Response(status=202)
