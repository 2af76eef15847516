"""Pieces every Python demo service shares: the Flask app with its health check, and fake work."""

from __future__ import annotations

import random
import time

from flask import Flask

from demo.config import HEALTH_PATH


def new_app(name: str) -> Flask:
    # Health checks are not traced: the parent sets OTEL_PYTHON_FLASK_EXCLUDED_URLS.
    app = Flask(name)

    @app.get(HEALTH_PATH)
    def healthz() -> str:
        return "ok"

    return app


def work(low_ms: float, high_ms: float) -> None:
    """Sleep a random while, standing in for real work, so latencies vary."""
    time.sleep(random.uniform(low_ms, high_ms) / 1000)
