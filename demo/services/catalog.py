"""catalog: titles and prices. An older service: it still exports Zipkin v2 JSON.

Called by recommendations (Node.js) with B3 multi headers only: the hop back into Python.
"""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Mapping

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from opentelemetry import trace

from demo.services.common import new_app, work

TITLES = ("espresso cups", "linen towels", "desk lamp", "notebook", "tea tin", "wool socks")
log = logging.getLogger("shop.catalog")
tracer = trace.get_tracer("shop.catalog", "0.7.3")


def create_app(peers: Mapping[str, str], kafka_bootstrap: str) -> Flask:
    app = new_app("catalog")

    @app.get("/catalog/<sku>")
    def item(sku: str) -> ResponseReturnValue:
        number = zlib.crc32(sku.encode())
        trace.get_current_span().set_attribute("catalog.sku", sku)
        with tracer.start_as_current_span("catalog.lookup") as span:
            span.set_attribute("catalog.cold_read", cold := random.random() < 0.15)
            if cold:
                span.add_event("cache.miss", {"cache.key": f"item:{sku}", "cache.backend": "local"})
                work(60, 140)  # the occasional slow read gives the latency histogram a tail
            else:
                work(2, 12)
        log.info("served %s", sku)
        return jsonify({"sku": sku, "title": TITLES[number % len(TITLES)], "price": round(4.99 + number % 40, 2)})

    return app
