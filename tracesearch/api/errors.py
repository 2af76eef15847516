"""HTTP status codes are chosen here, and only here: the errors of services, storage and the pipeline
become ``ApiError``s, which each API surface renders in its own format (Jaeger's envelope, Tempo's
``{"message", "error"}``, OTLP's ``google.rpc.Status``, our JSON shape)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from flask import Blueprint, Flask, Response
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from tracesearch.api.context import settings
from tracesearch.api.http_errors import ApiError, BadRequest, Overloaded, PayloadTooLarge, Unavailable
from tracesearch.pipeline.ingest_limits import RateLimited, TooManySpans
from tracesearch.pipeline.sink import BrokerUnavailable, SinkOverloaded
from tracesearch.query.errors import InvalidQuery, TooManyQueries
from tracesearch.query.traceql import TraceQLError
from tracesearch.storage.contracts import StorageUnavailable, UnsupportedQuery

log = logging.getLogger(__name__)
Render = Callable[[ApiError], Response]
DOMAIN_ERRORS = (
    InvalidQuery,
    TooManyQueries,
    TraceQLError,
    UnsupportedQuery,
    StorageUnavailable,
    BrokerUnavailable,
    SinkOverloaded,
    RateLimited,
    TooManySpans,
)


def as_api_error(error: Exception, query_field: str = "") -> ApiError:
    """The HTTP answer to an error raised below the API; ``query_field`` names the parameter a query
    the store refused came from (Tempo's ``q``)."""
    retry_after = settings().retry_after_s
    if isinstance(error, InvalidQuery):
        return BadRequest(error.message, field=error.field)
    if isinstance(error, TraceQLError):
        return BadRequest(f"invalid TraceQL query: {error}", field="q")
    if isinstance(error, UnsupportedQuery):
        return BadRequest(str(error), field=query_field)
    if isinstance(error, TooManyQueries):
        return Overloaded(f"too many queries running, retry later: {error}", retry_after_s=1)
    if isinstance(error, RateLimited):
        return Overloaded(str(error), retry_after_s=error.retry_after_s)
    if isinstance(error, TooManySpans):
        return PayloadTooLarge(str(error), field="spans")
    if isinstance(error, SinkOverloaded):
        return Overloaded(f"too much in flight, retry later: {error}", retry_after_s=retry_after)
    if isinstance(error, BrokerUnavailable):
        return Unavailable(f"spans not stored, retry later: {error}", retry_after_s=retry_after)
    if isinstance(error, StorageUnavailable):
        return Unavailable(str(error), retry_after_s=retry_after)
    raise TypeError(f"not an error of the layers below: {error!r}")  # pragma: no cover


def json_error(status: int, message: str, field: str = "", retry_after_s: int | None = None) -> Response:
    error: dict[str, object] = {"code": status, "message": message}
    if field:
        error["field"] = field
    response = Response(orjson.dumps({"error": error}), status, mimetype="application/json")
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


class JsonErrorDetail(Schema):
    code = fields.Integer(metadata={"description": "the HTTP status"})
    message = fields.String()
    field = fields.String(metadata={"description": "the parameter (or body part, header) at fault, if one is"})


class JsonError(Schema):
    """Our JSON error shape (``json_error``)."""

    error = fields.Nested(JsonErrorDetail)


def render_json(error: ApiError) -> Response:
    return json_error(error.status, error.message, error.field, error.retry_after_s)


def handle(target: Blueprint | Flask, render: Render, query_field: str = "") -> None:
    """Render ``ApiError`` and every error of the layers below with ``render`` on this blueprint (or app)."""
    target.register_error_handler(ApiError, render)

    def domain(error: Exception) -> Response:
        return render(as_api_error(error, query_field))

    for kind in DOMAIN_ERRORS:
        target.register_error_handler(kind, domain)


def register(app: Flask) -> None:
    """App-wide: our JSON shape for errors no blueprint renders itself, and a logged 500 for bugs.
    Call it after flask-smorest's ``Api`` is made: that registers its own handler of ``HTTPException``,
    which this one replaces."""
    handle(app, render_json)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return json_error(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error")
        return json_error(500, f"internal error: {type(error).__name__}")
