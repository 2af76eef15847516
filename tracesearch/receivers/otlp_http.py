"""OTLP/HTTP trace receiver: ``POST /v1/traces`` in protobuf or JSON, gzip or plain."""

from __future__ import annotations

import orjson
from flask import Response, request
from google.rpc import error_details_pb2, status_pb2
from marshmallow import Schema, fields
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tracesearch import prometheus
from tracesearch.api.blueprint import BINARY, Blueprint, ErrorFormat
from tracesearch.api.context import services
from tracesearch.api.http_errors import ApiError, BadRequest, UnsupportedMediaType
from tracesearch.codecs import otlp_json, otlp_proto
from tracesearch.codecs.errors import DecodeError
from tracesearch.pipeline.receive import IngestOutcome, receive
from tracesearch.receivers.body import decompress, media_type, read_raw

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_TRANSPORTS = {PROTOBUF: "otlp_proto", JSON: "otlp_json"}
# google.rpc.Code numbers for the Status body
_RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}


def _response_type() -> str:
    return PROTOBUF if media_type(request.content_type) == PROTOBUF else JSON


class RpcStatus(Schema):
    """google.rpc.Status, as JSON (or protobuf, for a protobuf request)."""

    code = fields.Integer(metadata={"description": "google.rpc.Code"})
    message = fields.String()
    details = fields.List(fields.Dict(), metadata={"description": "a google.rpc.BadRequest naming the field"})


class ExportResponse(Schema):
    """ExportTraceServiceResponse as JSON (or protobuf, for a protobuf request)."""

    partialSuccess = fields.Dict(metadata={"description": "rejectedSpans and errorMessage, when spans were refused"})


def otlp_error(error: ApiError) -> Response:
    """A google.rpc.Status in the request's encoding, as the OTLP spec asks for failed requests."""
    status = status_pb2.Status(code=_RPC_CODE.get(error.status, 2), message=error.message)
    if error.field:
        violation = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)]
        )
        status.details.add().Pack(violation)
    if _response_type() == PROTOBUF:
        response = Response(status.SerializeToString(), error.status, mimetype=PROTOBUF)
    else:
        payload: dict[str, object] = {"code": status.code, "message": error.message}
        if error.field:
            payload["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": error.field, "description": error.message}],
                }
            ]
        response = Response(orjson.dumps(payload), error.status, mimetype=JSON)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


bp = Blueprint(
    "otlp",
    __name__,
    description="OTLP/HTTP trace receiver",
    errors=ErrorFormat(otlp_error, RpcStatus, binary_content_type=PROTOBUF),
)


@bp.post("/v1/traces")
@bp.body("ExportTraceServiceRequest", [PROTOBUF, JSON])
@bp.answers("stored; partialSuccess says which spans were refused and why", ExportResponse)
@bp.answers("as JSON, in protobuf for a protobuf request", BINARY, content_type=PROTOBUF)
@bp.fails(400, 413, 415, 429, 503)
def export_traces() -> Response:
    """OTLP/HTTP trace export"""
    components = services()
    kind = media_type(request.content_type)
    if kind not in _TRANSPORTS:
        raise UnsupportedMediaType(
            f"Content-Type {kind or '(none)'!r} is not supported; use {PROTOBUF} or {JSON}", field="Content-Type"
        )
    limit = components.settings.max_request_bytes
    raw = read_raw(request.stream, request.content_length, limit)
    body = decompress(raw, request.headers.get("Content-Encoding", ""), limit)
    limits = components.receive_limits()
    try:
        if kind == PROTOBUF:
            # Kafka mode's sink forwards the vetted bytes: no model spans needed (codecs/otlp_vetting.py)
            batch = otlp_proto.decode_export_request(body, limits, build_spans=components.sink.needs_model_spans)
        else:
            batch = otlp_json.decode_export_request(body, limits)
    except DecodeError as exc:
        raise BadRequest(f"cannot decode OTLP {kind} body: {exc}", field=exc.field) from exc
    components.ingest_limiter.admit(batch.accepted + len(batch.rejected))
    return _success(receive(components.sink, batch, _TRANSPORTS[kind]), kind)


def _success(outcome: IngestOutcome, kind: str) -> Response:
    reply = trace_service_pb2.ExportTraceServiceResponse()
    if outcome.rejected or outcome.warnings:
        reply.partial_success.rejected_spans = len(outcome.rejected)
        reply.partial_success.error_message = outcome.summary()
    if kind == PROTOBUF:
        return Response(reply.SerializeToString(), 200, mimetype=PROTOBUF)
    body: dict[str, object] = {}
    if reply.HasField("partial_success"):
        body["partialSuccess"] = {
            "rejectedSpans": str(reply.partial_success.rejected_spans),
            "errorMessage": reply.partial_success.error_message,
        }
    return Response(orjson.dumps(body), 200, mimetype=JSON)


@bp.after_request
def count_request(response: Response) -> Response:
    prometheus.REQUESTS.labels(
        _TRANSPORTS.get(media_type(request.content_type), "otlp_other"), response.status_code
    ).inc()
    return response
