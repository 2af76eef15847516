"""Liveness and readiness."""

from __future__ import annotations

import orjson
from flask import Blueprint, Response

from tracesearch.api.context import services
from tracesearch.storage.contracts import StorageUnavailable

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """The process answers; says nothing about its dependencies (use /ready for that)."""
    return Response(orjson.dumps({"status": "ok"}), 200, mimetype="application/json")


@bp.get("/ready")
def ready() -> Response:
    try:
        status = services().readiness.status()
    except StorageUnavailable as exc:
        body = {"status": "unavailable", "elasticsearch": str(exc)}
        return Response(orjson.dumps(body), 503, mimetype="application/json", headers={"Retry-After": "5"})
    return Response(orjson.dumps({"status": "ok", "elasticsearch": status}), 200, mimetype="application/json")
