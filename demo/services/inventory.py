"""inventory: reserves stock. Exports Zipkin JSON, like an older service would."""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from opentelemetry import trace
from opentelemetry.trace import Tracer

from demo.services.common import new_app, work

WAREHOUSES = ("ams-1", "fra-2", "dub-1")


def create_app(peers: Mapping[str, str], tracer: Tracer) -> Flask:
    app = new_app("inventory")

    @app.post("/stock/<sku>/reserve")
    def reserve(sku: str) -> ResponseReturnValue:
        # Stable per sku so the same item always lives in the same warehouse.
        warehouse = WAREHOUSES[zlib.crc32(sku.encode()) % len(WAREHOUSES)]
        available = random.randint(3, 120)
        trace.get_current_span().set_attributes(
            {"inventory.sku": sku, "inventory.warehouse": warehouse, "inventory.available": available}
        )
        with tracer.start_as_current_span("stock.lookup") as span:
            span.set_attribute("inventory.cold_read", cold := random.random() < 0.15)
            if cold:
                span.add_event("cache.miss", {"cache.key": f"stock:{sku}", "cache.backend": "local"})
                work(60, 140)  # the occasional slow read gives the latency histogram a tail
            else:
                work(2, 12)
        return jsonify({"sku": sku, "reserved": 1, "warehouse": warehouse})

    return app
