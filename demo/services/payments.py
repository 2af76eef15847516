"""payments: charges cards. Exports OTLP/HTTP JSON and links charges to a batch."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from demo.config import FAILING_CARD
from demo.services.common import new_app, work


class AcquirerTimeoutError(TimeoutError):
    pass


log = logging.getLogger("shop.payments")
tracer = trace.get_tracer("shop.payments", "3.2.0")


def create_app(peers: Mapping[str, str], kafka_bootstrap: str) -> Flask:
    app = new_app("payments")
    # Charges are settled in batches that run in their own trace; each charge links
    # to the batch so the link has a real, separately searchable target.
    batch_id = f"batch-{uuid.uuid4().hex[:8]}"
    with tracer.start_as_current_span(
        "settlement.batch.open", context=Context(), attributes={"settlement.batch_id": batch_id}
    ) as batch_span:
        work(1, 3)
    batch_link = Link(batch_span.get_span_context(), {"link.reason": "settlement-batch"})

    @app.post("/charge")
    def charge() -> ResponseReturnValue:
        body = request.get_json(force=True)
        amount: float = body["amount"]
        trace.get_current_span().set_attributes(
            {"payment.amount": amount, "payment.currency": body["currency"], "order.id": body["order_id"]}
        )
        with tracer.start_as_current_span(
            "acquirer.authorize",
            kind=SpanKind.CLIENT,
            links=[batch_link],
            attributes={
                "peer.service": "card-acquirer",
                "server.address": "acquirer.example.net",
                "settlement.batch_id": batch_id,
                "payment.card_token": body["card"],
            },
            # Recorded by hand below, to show record_exception explicitly.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                if body["card"] == FAILING_CARD:
                    work(50, 70)
                    raise AcquirerTimeoutError("acquirer did not answer within 50 ms")
                work(15, 80)
            except AcquirerTimeoutError as error:
                span.record_exception(error, attributes={"payment.retryable": True})
                span.set_status(Status(StatusCode.ERROR, str(error)))
                log.error("charge for %s declined: %s", body["order_id"], error)
                return jsonify({"status": "declined", "reason": str(error)}), 504
        payment_id = f"pay-{uuid.uuid4().hex[:10]}"
        log.info("captured %.2f %s for %s as %s", amount, body["currency"], body["order_id"], payment_id)
        return jsonify({"payment_id": payment_id, "status": "captured"})

    return app
