"""Liveness and readiness."""

from __future__ import annotations

import elasticsearch
import orjson
from flask import Blueprint, Response, current_app

from tracesearch.runtime import Runtime

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """The process answers; says nothing about its dependencies (use /ready for that)."""
    return Response(orjson.dumps({"status": "ok"}), 200, mimetype="application/json")


@bp.get("/ready")
def ready() -> Response:
    runtime: Runtime = current_app.extensions["tracesearch"]
    try:
        health = runtime.es.cluster.health(timeout="2s").body
    except (elasticsearch.TransportError, elasticsearch.ApiError) as exc:
        body = {"status": "unavailable", "elasticsearch": str(exc)}
        return Response(orjson.dumps(body), 503, mimetype="application/json", headers={"Retry-After": "5"})
    body = {"status": "ok", "elasticsearch": health.get("status")}
    return Response(orjson.dumps(body), 200, mimetype="application/json")
