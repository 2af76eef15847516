"""``GET /metrics`` in Prometheus text format."""

from __future__ import annotations

from flask import Blueprint, Response

from tracesearch.prometheus import exposition

bp = Blueprint("prometheus", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, 200, content_type=content_type)
