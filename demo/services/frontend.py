"""frontend: the web tier. Loads the session, then hands the cart to checkout.

Runs under `opentelemetry-instrument` with the tracesearch distro: no tracing setup in its code,
only the API calls that add its own spans and attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import requests
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from opentelemetry import trace
from opentelemetry.trace import format_trace_id

from demo.config import TRACE_ID_HEADER
from demo.services.common import new_app, work

log = logging.getLogger("shop.frontend")
tracer = trace.get_tracer("shop.frontend", "2.4.1")


def create_app(peers: Mapping[str, str], kafka_bootstrap: str) -> Flask:
    app = new_app("frontend")
    checkout_url = peers["checkout"]
    http = requests.Session()  # instrumented: injects traceparent, adds CLIENT spans
    warm_sessions: set[str] = set()

    @app.post("/checkout")
    def checkout() -> ResponseReturnValue:
        order = request.get_json(force=True)
        server_span = trace.get_current_span()
        # The trace id goes back to the caller so the demo knows what to look for.
        trace_id = format_trace_id(server_span.get_span_context().trace_id)
        server_span.set_attributes(
            {"enduser.id": order["user"], "order.note": order["note"], "feature.flag": order["fast_checkout"]}
        )
        log.info("checkout for %s with %d item(s)", order["user"], len(order["items"]))

        with tracer.start_as_current_span("session.load") as span:
            span.set_attribute("session.store", "memcached")
            # A cold cache misses on each user's first visit, so the first trace the
            # demo prints always has a cache.miss event.
            if order["user"] not in warm_sessions:
                warm_sessions.add(order["user"])
                span.add_event("cache.miss", {"cache.key": f"session:{order['user']}", "cache.ttl_s": 900})
                work(8, 20)
            else:
                work(0.5, 2)

        response = http.post(f"{checkout_url}/checkout", json=order, timeout=15)
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        body = {"trace_id": trace_id, **(response.json() if is_json else {"status": "error"})}
        if not response.ok:
            log.warning("checkout for %s failed: HTTP %d", order["user"], response.status_code)
        status = 200 if response.ok else 502
        return jsonify(body), status, {TRACE_ID_HEADER: trace_id}

    return app
