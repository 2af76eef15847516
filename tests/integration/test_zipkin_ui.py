"""Zipkin's real UI (Lens 3.6.1) served by the real service under gunicorn: its page, everything the page
loads (with the content types a browser needs), its config.json, its client-side routes, and its API calls
below /zipkin reaching the Zipkin views over Elasticsearch; a service whose UI folder is empty does not
start.

The files come from the dev stack's cache (``lens_assets`` in conftest.py). The first run downloads
zipkin-server's exec jar (135 MB) from Maven Central with mvn: 8 to 19 s here, as fast as the link (the
checksum and the extraction take under a second); later runs find the folder, and the file takes ~5 s.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from devstack import launch
from tests.integration.conftest import Service, drop_prefix, start_service, stop_service
from tracesearch.api import ui
from tracesearch.app import create_app
from tracesearch.settings import Settings

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".ico": "image/", ".png": "image/png"}


@pytest.fixture(scope="module")
def ui_service(es_url: str, lens_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"itui-{uuid.uuid4().hex[:8]}"
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("ui"), extra_env=launch.ui_env(lens_assets))
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


def get(service: Service, path: str) -> requests.Response:
    return requests.get(f"{service.url}{path}", timeout=30)


def test_the_page_and_everything_it_loads(ui_service: Service) -> None:
    page = get(ui_service, "/zipkin/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<base href="/zipkin/"' in page.text and '<div id="root">' in page.text
    loaded = ui.referenced_files(page.text)
    assert {Path(name).suffix for name in loaded} == {".js", ".css", ".ico"}
    for name in loaded:
        answer = get(ui_service, urljoin("/zipkin/", name))
        assert answer.status_code == 200, name
        assert answer.headers["Content-Type"].startswith(CONTENT_TYPES[Path(name).suffix]), name
    script = next(name for name in loaded if name.endswith(".js"))
    assert len(get(ui_service, f"/zipkin/{script}").content) > 1_000_000  # Lens's whole bundle
    logo = get(ui_service, "/zipkin/static/media/zipkin-logo.png")  # loaded by the script, not the page
    assert logo.status_code == 200 and logo.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("path", ["/zipkin/index.html", "/zipkin/dependency", "/zipkin/traceViewer", "/zipkin/traces/"])
def test_lens_routes_answer_its_page(ui_service: Service, path: str) -> None:
    if path.endswith("/traces/"):
        path += secrets.token_hex(16)
    answer = get(ui_service, path)
    assert answer.status_code == 200
    assert answer.text == get(ui_service, "/zipkin/").text


def test_config_json(ui_service: Service) -> None:
    answer = get(ui_service, "/zipkin/config.json")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    config = answer.json()
    assert config["dependency"] == {"enabled": True, "lowErrorRate": 0.5, "highErrorRate": 0.75}
    assert (config["queryLimit"], config["defaultLookback"], config["searchEnabled"]) == (10, 86_400_000, True)


def test_a_file_lens_does_not_have_is_not_found(ui_service: Service) -> None:
    answer = get(ui_service, "/zipkin/static/js/index.00000000.js")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == 404


def test_lens_api_calls_reach_the_zipkin_views(ui_service: Service) -> None:
    trace_id, service_name = secrets.token_hex(16), f"ui-{secrets.token_hex(4)}"
    now_us = time.time_ns() // 1000
    span: dict[str, Any] = {
        "traceId": trace_id,
        "id": trace_id[:16],
        "name": "get /checkout",
        "kind": "SERVER",
        "timestamp": now_us,
        "duration": 1500,
        "localEndpoint": {"serviceName": service_name},
    }
    sent = requests.post(f"{ui_service.url}/api/v2/spans", json=[span], timeout=30)
    assert sent.status_code == 202, sent.text
    ui_service.refresh()
    for path in (f"/api/v2/trace/{trace_id}", "/api/v2/services", f"/api/v2/spans?serviceName={service_name}"):
        lens, ours = get(ui_service, f"/zipkin{path}"), get(ui_service, path)
        assert lens.status_code == 200, (path, lens.text)
        assert lens.json() == ours.json(), path
    assert get(ui_service, f"/zipkin/api/v2/trace/{trace_id}").json()[0]["localEndpoint"]["serviceName"] == service_name
    assert service_name in get(ui_service, "/zipkin/api/v2/services").json()


def test_without_its_files_the_service_does_not_start(es_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "no-lens"
    empty.mkdir()
    with pytest.raises(launch.LaunchError) as failed:
        start_service(es_url, "itui-never", tmp_path, extra_env=launch.ui_env(empty))
    assert f"configuration error: TRACESEARCH_UI is on but TRACESEARCH_UI_DIR={empty} has no index.html" in str(
        failed.value
    )


def test_the_real_page_moves_to_another_base_path(lens_assets: Path) -> None:
    """In-process: the page's references, and the script's own (its logo), are relative to <base>, so the
    whole UI follows TRACESEARCH_UI_BASE_PATH."""
    settings = Settings(ui=True, ui_dir=str(lens_assets), ui_base_path="/tools/zipkin", install_templates=False)
    client = create_app(settings).test_client()
    page = client.get("/tools/zipkin/dependency").get_data(as_text=True)
    assert '<base href="/tools/zipkin/"' in page and '"/zipkin' not in page
    for name in ui.referenced_files(page):
        assert client.get(urljoin("/tools/zipkin/", name)).status_code == 200, name
    script = next(name for name in ui.referenced_files(page) if name.endswith(".js"))
    bundle = (lens_assets / script).read_text()
    assert '"./static/media/zipkin-logo.png"' in bundle and '"/zipkin/static' not in bundle
