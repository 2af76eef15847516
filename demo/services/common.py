"""Pieces every demo service shares: the instrumented WSGI wrapper and fake work."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from flask import Flask, request
from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.trace import TracerProvider

from demo.config import HEALTH_PATH


def _name_span_after_route() -> None:
    # The WSGI middleware only knows the raw path ("GET /stock/sku-3"); Flask knows
    # the route template, which keeps span names low-cardinality like Flask
    # instrumentation would (it has no release matching SDK 1.45.2 yet).
    rule = request.url_rule
    span = trace.get_current_span()
    if rule is not None and span.is_recording():
        span.set_attribute("http.route", rule.rule)
        span.update_name(f"{request.method} {rule.rule}")


def new_app(name: str) -> Flask:
    app = Flask(name)
    app.before_request(_name_span_after_route)

    @app.get(HEALTH_PATH)
    def healthz() -> str:
        return "ok"

    return app


def instrument(app: WSGIApplication, provider: TracerProvider) -> WSGIApplication:
    """Trace every request except health checks, which would only be noise."""
    traced = OpenTelemetryMiddleware(app, tracer_provider=provider)

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return app(environ, start_response)
        result: Iterable[bytes] = traced(environ, start_response)
        return result

    return dispatch


def work(low_ms: float, high_ms: float) -> None:
    """Sleep a random while, standing in for real work, so latencies vary."""
    time.sleep(random.uniform(low_ms, high_ms) / 1000)
