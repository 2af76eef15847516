"""``GET /metrics`` in Prometheus text format: every series for a request without a tenant (the
operator's scrape, with a key not bound to a tenant once keys are in use), only the tenant's own
``tenant``-labelled series for a tenant's (see ``tracesearch.prometheus``). A scrape without a key on an
open ``/metrics`` while keys are in use sees the process-wide and default tenant's series: the names in a
tenant's span metrics (services, operations) are its data too."""

from __future__ import annotations

from flask import Response

from tracesearch.api.auth import authentication_on, identity, tenant
from tracesearch.api.blueprint import Blueprint
from tracesearch.prometheus import ANONYMOUS, exposition

bp = Blueprint("prometheus", __name__, description="Prometheus metrics")


@bp.get("/metrics")
@bp.answers("Prometheus text format", {"type": "string"}, content_type="text/plain")
def metrics() -> Response:
    """Prometheus metrics"""
    scope = tenant()
    if scope is None and authentication_on() and identity().key_id is None:
        body, content_type = exposition(ANONYMOUS)
    else:
        body, content_type = exposition(scope)
    return Response(body, 200, content_type=content_type)
