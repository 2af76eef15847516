"""Liveness and readiness."""

from __future__ import annotations

import orjson
from flask import Response
from marshmallow import Schema, fields

from tracesearch.api.blueprint import RETRY_AFTER, Blueprint
from tracesearch.api.context import services
from tracesearch.storage.contracts import StorageUnavailable

bp = Blueprint("health", __name__, description="Liveness and readiness")


class Health(Schema):
    status = fields.String(metadata={"description": "ok"})


class Readiness(Schema):
    status = fields.String(metadata={"description": "ok or unavailable"})
    elasticsearch = fields.Raw(metadata={"description": "the cluster's status, or why it cannot be reached"})


@bp.get("/health")
@bp.answers("the process answers", Health)
def health() -> Response:
    """Liveness

    The process answers; says nothing about its dependencies (use /ready for that).
    """
    return Response(orjson.dumps({"status": "ok"}), 200, mimetype="application/json")


@bp.get("/ready")
@bp.answers("Elasticsearch is reachable", Readiness)
@bp.answers("Elasticsearch is not reachable", Readiness, status=503, headers=RETRY_AFTER)
def ready() -> Response:
    """Readiness (Elasticsearch reachable)"""
    try:
        status = services().readiness.status()
    except StorageUnavailable as exc:
        body = {"status": "unavailable", "elasticsearch": str(exc)}
        return Response(orjson.dumps(body), 503, mimetype="application/json", headers={"Retry-After": "5"})
    return Response(orjson.dumps({"status": "ok", "elasticsearch": status}), 200, mimetype="application/json")
