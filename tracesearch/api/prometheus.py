"""``GET /metrics`` in Prometheus text format: every series for a request without a tenant (the
operator's scrape), only the tenant's own ``tenant``-labelled series for a tenant's (see
``tracesearch.prometheus``)."""

from __future__ import annotations

from flask import Response

from tracesearch.api.auth import tenant
from tracesearch.api.blueprint import Blueprint
from tracesearch.prometheus import exposition

bp = Blueprint("prometheus", __name__, description="Prometheus metrics")


@bp.get("/metrics")
@bp.answers("Prometheus text format", {"type": "string"}, content_type="text/plain")
def metrics() -> Response:
    """Prometheus metrics"""
    body, content_type = exposition(tenant())
    return Response(body, 200, content_type=content_type)
