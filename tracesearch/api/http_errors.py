"""HTTP errors raised by views and receivers: a status and a message that says what was wrong and where;
each API surface renders them in its own format (`api/errors.py`)."""

from __future__ import annotations


class ApiError(Exception):
    """An error with an HTTP status and a message that says what was wrong and where."""

    status = 500

    def __init__(self, message: str, field: str = "", retry_after_s: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class Overloaded(ApiError):
    """Too much in flight; the client should retry after ``retry_after_s``."""

    status = 429


class Unavailable(ApiError):
    """Storage or broker unreachable; nothing of the request is promised, retry it whole."""

    status = 503


class Unauthorized(ApiError):
    """No credentials, or an invalid or revoked key (answered with ``WWW-Authenticate``)."""

    status = 401


class Forbidden(ApiError):
    """A valid key without the scope the endpoint needs."""

    status = 403
