"""checkout: prices the cart, reserves stock (Java), stores the order, publishes it to Kafka, charges the card."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping

import requests
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from kafka import KafkaProducer
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from demo.config import ORDERS_TOPIC
from demo.services.common import new_app, work

CATALOG = {f"sku-{n}": round(4.99 + n * 3.25, 2) for n in range(1, 13)}
INSERT_ORDER = "INSERT INTO orders (id, user_id, total, items) VALUES ($1, $2, $3, $4)"
PUBLISH_TIMEOUT_S = 10
log = logging.getLogger("shop.checkout")
tracer = trace.get_tracer("shop.checkout", "1.9.0")


def create_app(peers: Mapping[str, str], kafka_bootstrap: str) -> Flask:
    app = new_app("checkout")
    inventory_url, payments_url = peers["inventory"], peers["payments"]
    http = requests.Session()
    # Instrumented by KafkaInstrumentor: a PRODUCER span per record, its context in the record's headers.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, value_serializer=lambda v: json.dumps(v).encode())
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
        reserved = http.post(f"{inventory_url}/reserve", json={"order_id": order_id, "items": skus}, timeout=15)
        if not reserved.ok:
            log.warning("order %s: stock not reserved (HTTP %d)", order_id, reserved.status_code)
            return jsonify({"order_id": order_id, "status": "out_of_stock"}), 409
        store()
        producer.send(ORDERS_TOPIC, {"order_id": order_id, "items": skus}).get(timeout=PUBLISH_TIMEOUT_S)
        charge = http.post(
            f"{payments_url}/charge",
            json={"order_id": order_id, "amount": total, "currency": "EUR", "card": order["card"]},
            timeout=15,
        )
        if not charge.ok:
            log.error("order %s: payment failed (HTTP %d)", order_id, charge.status_code)
            return jsonify({"order_id": order_id, "status": "payment_failed"}), 502
        log.info("order %s confirmed: %.2f EUR", order_id, total)
        return jsonify(
            {
                "order_id": order_id,
                "status": "confirmed",
                "recommendations": reserved.json().get("recommendations", []),
                **charge.json(),
            }
        )

    return app
