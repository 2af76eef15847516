"""``GET /metrics`` in Prometheus text format."""

from __future__ import annotations

from flask import Response

from tracesearch.api.blueprint import Blueprint
from tracesearch.prometheus import exposition

bp = Blueprint("prometheus", __name__, description="Prometheus metrics")


@bp.get("/metrics")
@bp.answers("Prometheus text format", {"type": "string"}, content_type="text/plain")
def metrics() -> Response:
    """Prometheus metrics"""
    body, content_type = exposition()
    return Response(body, 200, content_type=content_type)
