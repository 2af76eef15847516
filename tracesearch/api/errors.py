"""The one JSON error shape of our own endpoints, and the app-wide handlers that use it."""

from __future__ import annotations

import logging

import elasticsearch
import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from tracesearch.errors import ApiError

log = logging.getLogger(__name__)


def json_error(status: int, message: str, field: str = "", retry_after_s: int | None = None) -> Response:
    error: dict[str, object] = {"code": status, "message": message}
    if field:
        error["field"] = field
    response = Response(orjson.dumps({"error": error}), status, mimetype="application/json")
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return json_error(error.status, error.message, error.field, error.retry_after_s)

    @app.errorhandler(elasticsearch.BadRequestError)
    def query_refused(error: elasticsearch.BadRequestError) -> Response:
        # Elasticsearch could not run what a request asked for (a limit of its own, a number out of
        # range): the client's to change, said as such.
        return json_error(400, f"Elasticsearch refused the query: {error.message}")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return json_error(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error")
        return json_error(500, f"internal error: {type(error).__name__}")
