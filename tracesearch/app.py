"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.routing import PathConverter

from tracesearch.api import alerts, auth, errors, health, jaeger, logs, openapi, prometheus, sampling, tempo, ui, zipkin
from tracesearch.api.context import EXTENSION
from tracesearch.components import Components
from tracesearch.receivers import otlp_http, zipkin_http
from tracesearch.settings import Settings


class AnyPath(PathConverter):
    """Werkzeug's ``path`` (slashes allowed) taking any character: its ``.`` stops at a newline, so a service
    or tag name with one was no route (a 404 the document does not list) rather than a lookup."""

    regex = "[^/](?s:.)*?"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; no connection is opened here (clients are created on first use per worker)."""
    settings = settings or Settings.from_env()
    app = Flask("tracesearch")
    app.url_map.converters["path"] = AnyPath
    app.config["MAX_CONTENT_LENGTH"] = None  # receivers enforce our own limit, after decompression
    app.extensions[EXTENSION] = Components(settings)
    blueprints = (
        health.bp, prometheus.bp, otlp_http.bp, zipkin_http.bp, jaeger.bp, zipkin.bp, tempo.bp, logs.bp, sampling.bp,
        alerts.bp,
    )
    # The UI's folder is checked here, at start: a worker without it does not boot (no 500s later).
    mounts = ui.install(app, settings) if settings.ui else []
    openapi.register(app, blueprints, mounts)
    if settings.ui:
        ui.check_routes(app, settings.ui_base_path)
    errors.register(app)  # after the Api: its own handler of HTTPException is replaced by ours
    # After every route is registered: one unlisted in auth.ROUTE_SCOPES stops the start.
    auth.install(app, settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per Elasticsearch request would cost more than the request on the ingest path.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    return app
