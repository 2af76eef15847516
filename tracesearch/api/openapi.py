"""``GET /openapi.json``: the OpenAPI document of every endpoint, derived by flask-smorest from the views
as their blueprints are registered: paths from the routes, summaries from the docstrings, query
parameters from the schemas the views load them with, answers from what each view declares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import flask_smorest
import orjson
from flask import Flask, Response, current_app

from tracesearch.api import auth
from tracesearch.api.blueprint import Blueprint
from tracesearch.api.context import EXTENSION
from tracesearch.api.jaeger import RangeHint, TagsJson
from tracesearch.api.params import GoDuration, TraceIds, UnixTime
from tracesearch.api.tempo_params import Logfmt

TITLE = "tracesearch"
VERSION = "0.1.0"
# Our fields that parse text into something else: the OpenAPI type of what the client sends.
FIELD_TYPES: list[tuple[type, str]] = [
    (GoDuration, "string"),
    (UnixTime, "integer"),
    (TraceIds, "string"),
    (TagsJson, "string"),
    (RangeHint, "integer"),
    (Logfmt, "string"),
]


class Api(flask_smorest.Api):  # type: ignore[misc]  # untyped base: flask-smorest has no stubs
    # smorest would add a "default" answer in its own error shape to every operation; each view
    # declares its errors in its surface's shape instead.
    DEFAULT_ERROR_RESPONSE_NAME = None


bp = Blueprint("openapi", __name__, description="This document")


@dataclass(frozen=True)
class Mount:
    """A blueprint registered below a path; with ``name``, a second time (the Zipkin query API also
    below the UI's base path, where the UI calls it)."""

    blueprint: Blueprint
    url_prefix: str
    name: str | None = None


def register(app: Flask, blueprints: Iterable[Blueprint], mounts: Iterable[Mount] = ()) -> None:
    """Register ``blueprints``, ``mounts`` (and the one serving the document) on ``app``, documenting each."""
    api = Api(
        app,
        spec_kwargs={
            "title": TITLE,
            "version": VERSION,
            "openapi_version": "3.0.3",
            "info": {
                "description": "Trace ingest (OTLP/HTTP, Zipkin v2) and the Jaeger, Tempo and Zipkin query APIs "
                "that Grafana's data sources call."
            },
        },
    )
    for field, openapi_type in FIELD_TYPES:
        api.register_field(field, openapi_type, None)
    for blueprint in (*blueprints, bp):
        api.register_blueprint(blueprint)
    for mount in mounts:
        named = {"name": mount.name} if mount.name else {}
        api.register_blueprint(mount.blueprint, url_prefix=mount.url_prefix, **named)


def document(app: Flask) -> dict[str, Any]:
    """The document, with the security schemes and each operation's requirement when keys are on."""
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    spec = cast(dict[str, Any], api.spec.to_dict())
    return auth.document(app, spec, cast(Any, app.extensions[EXTENSION]).settings)


@bp.get("/openapi.json")
@bp.answers("the OpenAPI 3 document", {"type": "object"})
def openapi() -> Response:
    """This OpenAPI document"""
    return Response(orjson.dumps(document(current_app)), 200, mimetype="application/json")
