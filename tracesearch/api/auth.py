"""Who may call what: one ``before_request`` check, driven by one table of every route's scope.

With ``TRACESEARCH_AUTH_KEYS_FILE`` unset every request is ``ANONYMOUS`` (every scope, no tenant). Once
set, each route needs a key with the scope ``ROUTE_SCOPES`` names for its endpoint, sent as
``Authorization: Bearer <key>`` or as HTTP basic auth with the key as the password (the user name is
ignored: Grafana's data sources and the OpenTelemetry and Zipkin exporters can send either). Missing or
invalid credentials: 401 with ``WWW-Authenticate`` (Bearer and Basic, realm "tracesearch"); a valid key
without the scope: 403. Both in the error format of the surface the route belongs to (OTLP's
``google.rpc.Status``, Jaeger's envelope, Tempo's, our JSON), through the renderer its blueprint carries.

A route missing from the table is refused at start (``check_routes``) and by a unit test that walks
``app.url_map``: a new view cannot be served unprotected by forgetting it here. The request's identity
(key id, scopes, tenant) is ``identity()``; its tenant is ``tenant()``: the key's, or the one
``X-Scope-OrgID`` names when ``TRACESEARCH_TENANT_HEADER`` allows it, and ``context.services()`` hands the
views that tenant's components.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, cast

from flask import Flask, Response, current_app, g, request

from tracesearch import tenancy
from tracesearch.api import errors
from tracesearch.api.blueprint import Blueprint
from tracesearch.api.http_errors import ApiError, BadRequest, Forbidden, Unauthorized
from tracesearch.auth.keys import ADMIN, INGEST, READ
from tracesearch.auth.store import ANONYMOUS, Identity, KeyStore
from tracesearch.settings import Settings

EXTENSION = "tracesearch.auth"
REALM = "tracesearch"
CHALLENGES = (f'Bearer realm="{REALM}"', f'Basic realm="{REALM}", charset="UTF-8"')

# What a route needs: a set of scopes (any one of them will do), OPEN (nothing), or OPS (nothing, or
# READ with TRACESEARCH_AUTH_PROTECT_METRICS=true).
Requirement = frozenset[str]
OPEN: Requirement = frozenset()
OPS: Requirement = frozenset({"ops"})
_INGEST: Requirement = frozenset({INGEST})
_READ: Requirement = frozenset({READ})
_ADMIN: Requirement = frozenset({ADMIN})
# Remote samplers run in the instrumented services, which hold ingest keys: either scope may poll.
_SAMPLER: Requirement = frozenset({INGEST, READ})

_ZIPKIN_QUERY: dict[str, Requirement] = {
    "autocomplete_keys": _READ,
    "autocomplete_values": _READ,
    "dependencies": _READ,
    "remote_services": _READ,
    "services": _READ,
    "span_names": _READ,
    "trace": _READ,
    "trace_many": _READ,
    "traces": _READ,
}
# Every route by endpoint (blueprint.view). A route not here is refused at start.
ROUTE_SCOPES: Mapping[str, Requirement] = {
    # ingest
    "otlp.export_traces": _INGEST,
    "zipkin_ingest.post_spans": _INGEST,
    # Jaeger
    "jaeger.services": _READ,
    "jaeger.service_operations": _READ,
    "jaeger.operations": _READ,
    "jaeger.search_traces": _READ,
    "jaeger.get_trace": _READ,  # also Tempo's protobuf trace by id
    "jaeger.dependencies": _READ,
    # Tempo (echo and buildinfo too: Grafana's "Save & test" sends the data source's credentials)
    "tempo.echo": _READ,
    "tempo.buildinfo": _READ,
    "tempo.trace_v2": _READ,
    "tempo.search": _READ,
    "tempo.tags_v1": _READ,
    "tempo.tags_v2": _READ,
    "tempo.tag_values_v1": _READ,
    "tempo.tag_values_v2": _READ,
    "tempo.metrics_query_range": _READ,
    "tempo.metrics_query": _READ,
    # Zipkin reads, at the root and below the UI's base path (where Lens calls them)
    **{f"zipkin_query.{view}": scope for view, scope in _ZIPKIN_QUERY.items()},
    **{f"zipkin_query_ui.{view}": scope for view, scope in _ZIPKIN_QUERY.items()},
    # a trace's logs
    "trace_logs.get_trace_logs": _READ,
    # sampling: served to samplers, read and written by operators
    "sampling.api_sampling": _SAMPLER,
    "sampling.agent_sampling": _SAMPLER,
    "sampling.get_strategies": _READ,
    "sampling.put_strategies": _ADMIN,
    # alerts
    "alerts.get_alerts": _READ,
    "alerts.get_history": _READ,
    "alerts.get_rules": _READ,
    "alerts.put_rules": _ADMIN,
    # Zipkin's UI (Lens): the page, its files, its configuration
    "ui.index": _READ,
    "ui.index_html": _READ,
    "ui.trace_page": _READ,
    "ui.trace_viewer_page": _READ,
    "ui.dependency_page": _READ,
    "ui.config": _READ,
    "ui.asset": _READ,
    "static": _READ,  # Flask's own static route (the package has no static folder: always 404)
    # operations
    "health.health": OPS,
    "health.ready": OPS,
    "prometheus.metrics": OPS,
    "openapi.openapi": OPEN,  # the document: what schemathesis and people read first
}


# Routes that serve no tenant's data: X-Scope-OrgID is not read there (a probe or a client reading the
# document with a stray header gets its answer, not a 400 about a tenant it does not need).
UNSCOPED: frozenset[str] = frozenset({"health.health", "health.ready", "openapi.openapi", "static"})


def tenant_scoped(endpoint: str) -> bool:
    return endpoint not in UNSCOPED


class UnlistedRoutes(RuntimeError):
    """Routes that ``ROUTE_SCOPES`` does not list: a programming error, caught at start."""


def unlisted(app: Flask) -> list[str]:
    return sorted(
        {f"{rule.rule} ({rule.endpoint})" for rule in app.url_map.iter_rules() if rule.endpoint not in ROUTE_SCOPES}
    )


def check_routes(app: Flask) -> None:
    missing = unlisted(app)
    if missing:
        raise UnlistedRoutes(f"routes without a scope in tracesearch/api/auth.py ROUTE_SCOPES: {', '.join(missing)}")


def requirement(endpoint: str, settings: Settings) -> Requirement:
    """The scopes a route needs (any one of them), empty for none."""
    needed = ROUTE_SCOPES[endpoint]
    if needed is OPS:
        return _READ if settings.auth_protect_metrics else OPEN
    return needed


def identity() -> Identity:
    """Who the current request is (``ANONYMOUS`` with authentication off)."""
    return cast(Identity, g.get("identity", ANONYMOUS))


def credentials(authorization: str) -> str | None:
    """The key in an ``Authorization`` header: Bearer, or basic auth's password; None if neither."""
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        return value
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


def _render(error: ApiError, challenge: tuple[str, ...]) -> Response:
    """``error`` in the error format of the blueprint serving the request, with ``WWW-Authenticate``."""
    blueprint = current_app.blueprints.get(request.blueprint or "")
    error_format = getattr(blueprint, "error_format", None) if isinstance(blueprint, Blueprint) else None
    response = error_format.render(error) if error_format is not None else errors.render_json(error)
    for value in challenge:
        response.headers.add("WWW-Authenticate", value)
    return response


def _check() -> Response | None:
    if request.url_rule is None or request.endpoint is None:
        return None  # 404, 405 or a redirect: Flask answers it, nothing is served
    settings = cast(Any, current_app.extensions["tracesearch"]).settings
    refused = _authenticate(settings)
    if refused is not None or not tenant_scoped(request.endpoint):
        return refused
    return _choose_tenant(settings)


def _authenticate(settings: Settings) -> Response | None:
    """Sets ``g.identity`` from the request's key; the refusal when the route needs one it lacks."""
    store = cast(KeyStore | None, current_app.extensions.get(EXTENSION))
    if store is None:
        return None  # authentication off: identity() is ANONYMOUS
    needed = requirement(request.endpoint or "", settings)
    if not needed:
        # An open route still learns who sent a key (an open /metrics shows a bound key its tenant's).
        return _identify(store) if "Authorization" in request.headers else None
    key = credentials(request.headers.get("Authorization", ""))
    if key is None:
        return _render(
            Unauthorized(
                "authentication required: send Authorization: Bearer <key>, or the key as basic auth's password",
                field="Authorization",
            ),
            CHALLENGES,
        )
    found = store.authenticate(key)
    if found is None:
        return _render(
            Unauthorized("invalid or revoked key", field="Authorization"),
            (f'Bearer realm="{REALM}", error="invalid_token"', CHALLENGES[1]),
        )
    g.identity = found
    if not found.allows(needed):
        scopes = " or ".join(sorted(needed))
        return _render(
            Forbidden(f"key {found.key_id!r} lacks the {scopes} scope this endpoint needs", field="Authorization"),
            (f'Bearer realm="{REALM}", error="insufficient_scope", scope="{" ".join(sorted(needed))}"',),
        )
    return None


def _identify(store: KeyStore) -> Response | None:
    """Sets ``g.identity`` from the key sent to an open route; a key that is sent must be valid (401)."""
    key = credentials(request.headers.get("Authorization", ""))
    found = store.authenticate(key) if key is not None else None
    if found is None:
        return _render(
            Unauthorized(
                "invalid or revoked key (this route needs none: send none, or a valid one)", field="Authorization"
            ),
            (f'Bearer realm="{REALM}", error="invalid_token"', CHALLENGES[1]),
        )
    g.identity = found
    return None


def authentication_on() -> bool:
    """Whether keys are in use (TRACESEARCH_AUTH_KEYS_FILE is set)."""
    return EXTENSION in current_app.extensions


def tenant() -> str | None:
    """The tenant of the current request (None: the default tenant)."""
    return cast(str | None, g.get("tenant"))


def _choose_tenant(settings: Settings) -> Response | None:
    """Sets ``g.tenant``: the key's tenant, else ``X-Scope-OrgID`` when TRACESEARCH_TENANT_HEADER allows it.
    A bound key naming another tenant in the header is refused (403), an invalid name too (400)."""
    header = request.headers.get(tenancy.HEADER, "").strip()
    bound = identity().tenant
    if bound is not None:
        if header and header != bound:
            return _render(
                Forbidden(f"this key is bound to tenant {bound!r}, not {header!r}", field=tenancy.HEADER), ()
            )
        return _enter(bound)
    if not header or not settings.tenant_header:
        return None
    if not tenancy.valid_tenant(header):
        return _render(
            BadRequest(
                f"{tenancy.HEADER} {header[:80]!r} is not a tenant name: use {tenancy.NAME_RULE} "
                "(lowercase; it becomes part of index names)",
                field=tenancy.HEADER,
            ),
            (),
        )
    return _enter(header)


def _enter(name: str) -> Response | None:
    try:
        cast(Any, current_app.extensions["tracesearch"]).for_tenant(name)
    except tenancy.TooManyTenants as exc:
        return _render(Forbidden(str(exc), field=tenancy.HEADER), ())
    g.tenant = name
    return None


def install(app: Flask, settings: Settings) -> None:
    """Refuse unlisted routes; with a keys file, load it (a bad one stops the start) and check every request."""
    check_routes(app)
    if settings.auth_keys_file:
        app.extensions[EXTENSION] = KeyStore(settings.auth_keys_file, settings.auth_reload_interval_s)
    app.before_request(_check)


# ------------------------------------------------------------------------------------------- OpenAPI

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "the key as the password (the user name is ignored)",
    },
}


def document(app: Flask, spec: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``spec`` with what keys and tenants add, as the service runs: with keys, the security schemes and
    each operation's requirement and 401/403 answers; with keys or TRACESEARCH_TENANT_HEADER, the
    ``X-Scope-OrgID`` parameter of every tenant-scoped operation and the 400/403 it can cause."""
    keys, header = bool(settings.auth_keys_file), settings.tenant_header
    if not keys and not header:
        return spec
    if keys:
        spec.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for endpoint, operation in _operations(app, spec):
        content = _error_content(app, spec, endpoint, operation)
        if keys:
            _document_requirement(operation, requirement(endpoint, settings), content)
        if tenant_scoped(endpoint):
            _document_tenant(operation, keys, header, content)
    return spec


def _operations(app: Flask, spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(endpoint, operation) of every operation of ``spec`` that a route of ``app`` serves."""
    by_operation: dict[tuple[str, str], str] = {}
    for rule in app.url_map.iter_rules():
        path = _openapi_path(rule.rule)
        for method in rule.methods or ():
            by_operation[(path, method.lower())] = rule.endpoint
    found = []
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            endpoint = by_operation.get((path, method))
            if endpoint is not None and isinstance(operation, dict):
                found.append((endpoint, operation))
    return found


def _document_requirement(operation: dict[str, Any], needed: Requirement, content: dict[str, Any]) -> None:
    if not needed:
        operation["security"] = []
        return
    operation["security"] = [{"bearerAuth": []}, {"basicAuth": []}]
    operation["x-scopes"] = sorted(needed)
    responses = operation.setdefault("responses", {})
    responses["401"] = {
        "description": "no key, or an invalid or revoked one",
        "headers": {
            "WWW-Authenticate": {
                "schema": {"type": "string"},
                "description": "Bearer and Basic, realm tracesearch",
            }
        },
        "content": content,
    }
    responses["403"] = {
        "description": f"the key lacks the scope: {' or '.join(sorted(needed))}",
        "content": content,
    }


TENANT_PARAMETER_DESCRIPTION = {
    # (keys, header allowed)
    (True, True): "the tenant, when the key is bound to none ({rule}); a bound key may only name its own",
    (True, False): "ignored for keys bound to no tenant; a key bound to a tenant may only name its own",
    (False, True): "the tenant whose data this reads or writes ({rule}); none: the default tenant",
}


def _document_tenant(operation: dict[str, Any], keys: bool, header: bool, content: dict[str, Any]) -> None:
    """``X-Scope-OrgID`` and what it can cause: 400 for an invalid name (header allowed), 403 for a bound
    key naming another tenant or a tenant over TRACESEARCH_MAX_TENANTS."""
    description = TENANT_PARAMETER_DESCRIPTION[(keys, header)].format(rule=tenancy.NAME_RULE)
    parameter = {"in": "header", "name": tenancy.HEADER, "required": False, "description": description}
    parameter["schema"] = {"type": "string"}
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("in") == "header" and p.get("name") == tenancy.HEADER for p in parameters):
        parameters.append(parameter)
    responses = operation.setdefault("responses", {})
    if header:
        _add_reason(responses, "400", f"{tenancy.HEADER} is not a tenant name", content)
    reasons = [f"{tenancy.HEADER} names a tenant the key is not bound to"] if keys else []
    _add_reason(responses, "403", "; ".join([*reasons, "a new tenant over TRACESEARCH_MAX_TENANTS"]), content)


def _add_reason(responses: dict[str, Any], status: str, reason: str, content: dict[str, Any]) -> None:
    """The answer ``status`` (in this operation's error shape), its description saying ``reason`` too."""
    found = responses.get(status)
    if isinstance(found, dict) and found.get("description"):
        found["description"] = f"{found['description']}; or {reason}"
    else:
        responses[status] = {"description": reason, "content": content}


def _openapi_path(rule: str) -> str:
    """``/api/traces/<trace_id>`` → ``/api/traces/{trace_id}`` (``<path:tag>`` too)."""
    out, rest = [], rule
    while "<" in rest:
        before, _, after = rest.partition("<")
        name, _, rest = after.partition(">")
        out += [before, "{", name.rpartition(":")[2], "}"]
    return "".join([*out, rest])


def _error_content(app: Flask, spec: dict[str, Any], endpoint: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The content of an error this operation answers already (its surface's shape), else the shape of
    the error format of the blueprint serving it (echo and buildinfo declare no errors but answer 401 and
    403 in Tempo's), else our JSON."""
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith(("4", "5")) and isinstance(response, dict) and response.get("content"):
            return cast(dict[str, Any], response["content"])
    blueprint = app.blueprints.get(endpoint.partition(".")[0])
    error_format = getattr(blueprint, "error_format", None) if isinstance(blueprint, Blueprint) else None
    name = error_format.schema.__name__.removesuffix("Schema") if error_format is not None else "JsonError"
    if name not in spec.get("components", {}).get("schemas", {}):
        name = "JsonError"
    content_type = error_format.content_type if error_format is not None else "application/json"
    return {content_type: {"schema": {"$ref": f"#/components/schemas/{name}"}}}
