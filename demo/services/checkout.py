"""checkout: prices the cart, reserves stock, stores the order, charges the card."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import requests
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer

from demo.services.common import new_app, work

CATALOG = {f"sku-{n}": round(4.99 + n * 3.25, 2) for n in range(1, 13)}
INSERT_ORDER = "INSERT INTO orders (id, user_id, total, items) VALUES ($1, $2, $3, $4)"


def create_app(peers: Mapping[str, str], tracer: Tracer) -> Flask:
    app = new_app("checkout")
    inventory_url, payments_url = peers["inventory"], peers["payments"]
    http = requests.Session()
    price_cache: dict[str, float] = {}

    def price(skus: list[str]) -> float:
        with tracer.start_as_current_span("cart.price") as span:
            misses = [sku for sku in skus if sku not in price_cache]
            for sku in misses:  # cold cache: the first order of each sku misses
                span.add_event("cache.miss", {"cache.key": f"price:{sku}", "cache.backend": "redis"})
                price_cache[sku] = CATALOG.get(sku, 9.99)
                work(3, 9)
            span.set_attribute("cache.hit_ratio", 1 - len(misses) / len(skus))
            return round(sum(price_cache[sku] for sku in skus), 2)

    def store() -> None:
        # The database is not instrumented; this CLIENT span is the only trace of it,
        # and peer.service / server.address let a backend draw it as a node anyway.
        with tracer.start_as_current_span(
            "INSERT shop.orders",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.namespace": "shop",
                "db.operation.name": "INSERT",
                "db.collection.name": "orders",
                "db.statement": INSERT_ORDER,
                "server.address": "orders-db.internal",
                "server.port": 5432,
                "peer.service": "orders-db",
                "db.params.count": 4,
            },
        ):
            work(4, 25)

    @app.post("/checkout")
    def checkout() -> ResponseReturnValue:
        order = request.get_json(force=True)
        skus: list[str] = order["items"]
        order_id = f"ord-{uuid.uuid4().hex[:12]}"
        total = price(skus)
        trace.get_current_span().set_attributes(
            {
                "order.id": order_id,
                "order.note": order["note"],
                "cart.items": skus,
                "cart.item_count": len(skus),
                "cart.total": total,
                "feature.flag": order["fast_checkout"],
            }
        )
        for sku in skus:
            reply = http.post(f"{inventory_url}/stock/{sku}/reserve", json={"qty": 1}, timeout=10)
            reply.raise_for_status()
        store()
        charge = http.post(
            f"{payments_url}/charge",
            json={"order_id": order_id, "amount": total, "currency": "EUR", "card": order["card"]},
            timeout=10,
        )
        if not charge.ok:
            return jsonify({"order_id": order_id, "status": "payment_failed"}), 502
        return jsonify({"order_id": order_id, "status": "confirmed", **charge.json()})

    return app
