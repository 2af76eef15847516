"""Zipkin's UI (Lens) as the service serves it: index.html for Lens's client-side routes, its config.json,
its files (404 for the others), its API calls below the base path reaching the Zipkin views, the start-up
refusals, the settings, and every route of it in the OpenAPI document.

The folder is a small imitation of Lens's build (same index.html shape); the real one is checked in
tests/integration/test_zipkin_ui.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.unit import test_openapi as openapi_checks
from tracesearch.api import ui
from tracesearch.app import create_app
from tracesearch.settings import Settings, SettingsError

TRACE = "0af7651916cd43dd8448eb211c80319c"
SCRIPT = "static/js/index.c42cd5c9.js"
STYLE = "static/css/index.a7aa86b4.css"
LOGO = "static/media/zipkin-logo.png"
# What Lens 3.6.1's build writes (vite, base /zipkin), with its comment header left out.
INDEX_HTML = f"""<!DOCTYPE html>
<html>
  <head>
    <base href="/zipkin/" >
    <meta charset="utf-8" />
    <link rel="icon" href="/zipkin/favicon.ico" />
    <title>Zipkin</title>
    <script type="module" crossorigin src="/zipkin/{SCRIPT}"></script>
    <link rel="stylesheet" href="/zipkin/{STYLE}">
  </head>
  <body>
    <div id="root"></div>
  </body>
</html>
"""
SPA_PATHS = ("/", "/index.html", f"/traces/{TRACE}", "/dependency", "/traceViewer")
LENS_CONFIG_KEYS = {
    "environment",
    "queryLimit",
    "defaultLookback",
    "searchEnabled",
    "logsUrl",
    "supportUrl",
    "archivePostUrl",
    "archiveUrl",
    "dependency",
}


def write_lens(folder: Path, index_html: str = INDEX_HTML) -> Path:
    files = {
        "index.html": index_html.encode(),
        SCRIPT: b"console.log('lens')",
        STYLE: b".vizceral{display:block}",
        LOGO: b"\x89PNG\r\n",
        "favicon.ico": b"\x00\x00\x01\x00",
        ui.MARKER: b"io.zipkin:zipkin-server:3.6.1:jar:exec\n",
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


def ui_settings(folder: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"index_prefix": "ui", "install_templates": False, "servicegraph_enabled": True}
    values.update(overrides)
    return Settings(ui=True, ui_dir=str(folder), **values)


def ui_app(settings: Settings) -> Flask:
    app = create_app(settings)
    app.extensions["tracesearch"].__dict__["_es"] = openapi_checks.Recorder()  # answers /ready too
    return app


@pytest.fixture(scope="module")
def lens_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lens(tmp_path_factory.mktemp("lens"))


@pytest.fixture(scope="module")
def app(lens_dir: Path) -> Flask:
    return ui_app(ui_settings(lens_dir))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# ------------------------------------------------------------------------------------------------ serving


@pytest.mark.parametrize("path", SPA_PATHS)
def test_lens_routes_answer_its_index_html(client: FlaskClient, path: str) -> None:
    answer = client.get(f"/zipkin{path}")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    assert answer.get_data(as_text=True) == INDEX_HTML
    assert answer.headers["Cache-Control"] == "no-cache"


def test_the_base_path_without_its_slash_is_redirected(client: FlaskClient) -> None:
    answer = client.get("/zipkin")
    assert answer.status_code == 308
    assert answer.headers["Location"].endswith("/zipkin/")


def test_config_json_is_what_lens_reads_at_start(client: FlaskClient) -> None:
    answer = client.get("/zipkin/config.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    config = answer.json
    assert config is not None and set(config) == LENS_CONFIG_KEYS
    assert config["queryLimit"] == 10
    assert config["defaultLookback"] == 86_400_000  # TRACESEARCH_ZIPKIN_DEFAULT_LOOKBACK, 1d, in ms
    assert config["searchEnabled"] is True
    assert config["dependency"] == {"enabled": True, "lowErrorRate": 0.5, "highErrorRate": 0.75}
    assert config["logsUrl"] is None and config["environment"] == ""


def test_config_json_follows_the_settings(lens_dir: Path) -> None:
    settings = ui_settings(lens_dir, servicegraph_enabled=False, zipkin_lookback_s=7200.0)
    config = ui_app(settings).test_client().get("/zipkin/config.json").json
    assert config is not None
    assert config["dependency"]["enabled"] is False  # no service graph: no dependency page
    assert config["defaultLookback"] == 7_200_000


@pytest.mark.parametrize(
    ("name", "content_type"),
    [(SCRIPT, "text/javascript"), (STYLE, "text/css"), (LOGO, "image/png"), ("favicon.ico", "image/")],
)
def test_lens_files_are_served_with_their_content_type(client: FlaskClient, name: str, content_type: str) -> None:
    answer = client.get(f"/zipkin/{name}")
    assert answer.status_code == 200
    assert (answer.mimetype or "").startswith(content_type)
    # Content-hashed names never change: a browser may keep them.
    assert ("immutable" in answer.headers["Cache-Control"]) == name.startswith("static/")


@pytest.mark.parametrize(
    "path",
    [
        "/zipkin/static/js/index.00000000.js",
        "/zipkin/nothing.css",
        f"/zipkin/{ui.MARKER}",
        "/zipkin/static/../../outside.txt",
        "/zipkin/%2e%2e/outside.txt",
        "/zipkin/traces/a/b",
    ],
)
def test_other_files_are_not_found(client: FlaskClient, lens_dir: Path, path: str) -> None:
    (lens_dir.parent / "outside.txt").write_text("not Lens's")
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json is not None and answer.json["error"]["code"] == 404


def test_lens_api_calls_below_the_base_path_reach_the_zipkin_views(client: FlaskClient) -> None:
    for path in ("/api/v2/services", f"/api/v2/trace/{TRACE}", "/api/v2/dependencies?endTs=1795176000000"):
        ours, lens = client.get(path), client.get(f"/zipkin{path}")
        assert (lens.status_code, lens.data) == (ours.status_code, ours.data), path
    # In the Zipkin API's error shape too.
    refused = client.get("/zipkin/api/v2/spans")
    assert refused.status_code == 400
    assert refused.json == client.get("/api/v2/spans").json
    assert refused.json is not None and refused.json["error"]["field"] == "serviceName"


def test_without_the_ui_nothing_is_served_below_zipkin() -> None:
    app = create_app(Settings(index_prefix="ui", install_templates=False))
    client = app.test_client()
    for path in ("/zipkin/", "/zipkin/config.json", "/zipkin/api/v2/services"):
        assert client.get(path).status_code == 404, path
    assert ui.EXTENSION not in app.extensions


# ------------------------------------------------------------------------------------------- base path


def test_another_base_path_moves_the_ui_and_what_its_page_loads(lens_dir: Path) -> None:
    client = ui_app(ui_settings(lens_dir, ui_base_path="/tools/lens")).test_client()
    page = client.get("/tools/lens/traces/" + TRACE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<base href="/tools/lens/" >' in html and "/zipkin" not in html
    # Everything the page loads resolves, against <base>, to a file served below the new path.
    loaded = ui.referenced_files(html)
    assert sorted(loaded) == sorted(["favicon.ico", SCRIPT, STYLE])
    for name in loaded:
        assert client.get(urljoin("/tools/lens/", f"./{name}")).status_code == 200, name
    assert client.get("/tools/lens/config.json").status_code == 200
    assert client.get("/tools/lens/api/v2/services").status_code == 200
    assert client.get("/zipkin/").status_code == 404


def test_rebase_is_zipkins_rewrite() -> None:
    rebased = ui.rebase(INDEX_HTML, "/admin/zipkin")
    assert re.findall(r'(?:src|href)="([^"]*)"', rebased) == [
        "/admin/zipkin/",
        "./favicon.ico",
        f"./{SCRIPT}",
        f"./{STYLE}",
    ]
    assert ui.rebase(INDEX_HTML, "/zipkin") == INDEX_HTML


def test_another_base_path_needs_lens_base_tag(tmp_path: Path) -> None:
    folder = write_lens(tmp_path, INDEX_HTML.replace('<base href="/zipkin/" >', ""))
    with pytest.raises(ui.UiAssetsError, match=r'TRACESEARCH_UI_BASE_PATH=/lens: .*has no <base href="/zipkin/"'):
        create_app(ui_settings(folder, ui_base_path="/lens"))
    create_app(ui_settings(folder))  # at Lens's own path the page is served as it is


@pytest.mark.parametrize("base", ["/api", "/api/v2", "/metrics", "/static"])
def test_a_base_path_over_the_services_routes_is_refused(lens_dir: Path, base: str) -> None:
    with pytest.raises(ui.UiAssetsError, match=f"TRACESEARCH_UI_BASE_PATH={base} holds routes of the service"):
        create_app(ui_settings(lens_dir, ui_base_path=base))


# -------------------------------------------------------------------------------------------- start-up


def test_a_folder_without_the_ui_stops_the_start(tmp_path: Path) -> None:
    environ = {"TRACESEARCH_UI": "true", "TRACESEARCH_UI_DIR": str(tmp_path)}
    message = (
        f"TRACESEARCH_UI is on but TRACESEARCH_UI_DIR={tmp_path} has no index.html: put Zipkin's UI there with "
        f"`python -m tracesearch fetch-ui --into {tmp_path}` once, or set TRACESEARCH_UI=false"
    )
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)  # what gunicorn.conf.py runs in the master, before any worker
    assert str(refused.value) == message
    with pytest.raises(ui.UiAssetsError) as app_refused:
        create_app(ui_settings(tmp_path))
    assert str(app_refused.value) == message


def test_the_ui_needs_its_folder_named() -> None:
    with pytest.raises(SettingsError, match=r"TRACESEARCH_UI is on but TRACESEARCH_UI_DIR is empty: .* fetch-ui"):
        Settings.from_env({"TRACESEARCH_UI": "true"})


def test_a_folder_missing_a_file_the_page_loads_stops_the_start(tmp_path: Path) -> None:
    folder = write_lens(tmp_path)
    (folder / SCRIPT).unlink()
    with pytest.raises(ui.UiAssetsError, match=f"index.html loads {SCRIPT}, missing from the folder; fetch"):
        create_app(ui_settings(folder))


# -------------------------------------------------------------------------------------------- settings


def test_ui_settings_defaults_and_parsing(lens_dir: Path) -> None:
    default = Settings.from_env({})
    assert (default.ui, default.ui_dir, default.ui_base_path) == (False, "", "/zipkin")
    on = Settings.from_env(
        {"TRACESEARCH_UI": "on", "TRACESEARCH_UI_DIR": str(lens_dir), "TRACESEARCH_UI_BASE_PATH": "/tools/zipkin/"}
    )
    assert (on.ui, on.ui_dir, on.ui_base_path) == (True, str(lens_dir), "/tools/zipkin")


@pytest.mark.parametrize("path", ["/", "zipkin", "", "/a//b", "/a/../b", "/./zipkin", "/zip kin", '/"><script>'])
def test_a_base_path_that_is_not_a_plain_path_is_refused(path: str) -> None:
    with pytest.raises(SettingsError, match="TRACESEARCH_UI_BASE_PATH="):
        Settings.from_env({"TRACESEARCH_UI_BASE_PATH": path})


# --------------------------------------------------------------------------------------------- OpenAPI


def test_the_openapi_checks_hold_with_the_ui_on(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/unit/test_openapi.py's checks, over the app with the UI: every route documented, parameters,
    errors in the Zipkin API's JSON shape (the UI's 404 too)."""
    for name in (ui.bp.name, ui.ZIPKIN_MOUNT):
        monkeypatch.setitem(openapi_checks.ERROR_SCHEMAS, name, "JsonError")
    for path, params in list(openapi_checks.VALID.items()):
        monkeypatch.setitem(openapi_checks.VALID, f"/zipkin{path}", params)
    monkeypatch.setitem(openapi_checks.PATH_VALUES, "filename", "favicon.ico")
    document: dict[str, Any] = app.test_client().get("/openapi.json").json  # type: ignore[assignment]
    openapi_checks.test_every_route_and_method_is_in_the_openapi_document(app, document)
    openapi_checks.test_documented_query_parameters_are_the_fields_of_the_views_schema(app, document)
    openapi_checks.test_views_read_no_parameter_the_document_does_not_list(app, document)
    openapi_checks.test_errors_are_documented_in_the_shape_each_surface_answers(app, document)


def test_the_ui_routes_in_the_openapi_document(app: Flask) -> None:
    document: dict[str, Any] = app.test_client().get("/openapi.json").json  # type: ignore[assignment]
    ui_paths = {path for path in document["paths"] if path.startswith("/zipkin/")}
    assert {"/zipkin/", "/zipkin/config.json", "/zipkin/traces/{trace_id}", "/zipkin/dependency"} <= ui_paths
    assert {"/zipkin/{filename}", "/zipkin/api/v2/traces", "/zipkin/api/v2/trace/{trace_id}"} <= ui_paths
    config = document["paths"]["/zipkin/config.json"]["get"]["responses"]["200"]["content"]["application/json"]
    assert config["schema"]["$ref"] == "#/components/schemas/LensConfig"
    assert "text/html" in document["paths"]["/zipkin/traces/{trace_id}"]["get"]["responses"]["200"]["content"]
