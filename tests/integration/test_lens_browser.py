"""Zipkin's own UI (Lens), served by tracesearch, driven in a real browser (Debian's headless Chromium).

A real OpenTelemetry SDK sends a trace of three services; then, as a user would: the service picker
lists the services, a search shows the trace's row, the trace page shows every span with its tags, and
the dependency page draws the service map. Lens is a client nobody here wrote, so this proves our
Zipkin v2 read API as Lens reads it. A screenshot per step is kept in ``.devstack/artifacts/lens/``;
the browser console must stay free of errors (a failed API call is one).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from devstack.browser import FLAGS, BrowserUnavailable, ensure_browser
from tests.integration.conftest import REPO, Service, drop_prefix, start_service, stop_service
from tests.integration.otel_traces import ExportedTrace, three_service_trace

ARTIFACTS = REPO / ".devstack" / "artifacts" / "lens"
WAIT_S = 20
EDGES = {("user", "frontend"), ("frontend", "checkout"), ("checkout", "inventory")}


@dataclass
class Lens:
    url: str
    driver: webdriver.Chrome
    trace: ExportedTrace

    def wait(self, what: str, condition: Callable[[Any], Any]) -> Any:
        try:
            return WebDriverWait(self.driver, WAIT_S).until(condition)
        except Exception as exc:
            shot = self.screenshot(f"failed-{what.replace(' ', '-')}")
            raise AssertionError(f"Lens never showed {what} (screenshot: {shot})") from exc

    def screenshot(self, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{step}.png"
        self.driver.save_screenshot(str(path))
        return path

    def button(self, text: str) -> Any:
        return self.wait(
            f"a {text} button",
            lambda d: next(
                (
                    b
                    for b in d.find_elements(By.CSS_SELECTOR, "button, a[role=button]")
                    if b.text.strip().upper() == text and b.is_displayed()
                ),
                None,
            ),
        )

    def console_errors(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]  # selenium leaves it untyped
        return [entry for entry in log if entry["level"] == "SEVERE"]


def _dependencies_drawn(service: Service) -> bool:
    end_ms = time.time_ns() // 1_000_000 + 60_000
    links = service.get("/api/v2/dependencies", endTs=str(end_ms), lookback="3600000").json()
    return {(link["parent"], link["child"]) for link in links} >= EDGES


@pytest.fixture(scope="module")
def ui_service(es_url: str, lens_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    prefix = f"it-lens-{uuid.uuid4().hex[:8]}"
    env = {
        "TRACESEARCH_UI": "true",
        "TRACESEARCH_UI_DIR": str(lens_assets),
        "TRACESEARCH_SERVICEGRAPH_WAIT": "1s",
        "TRACESEARCH_SERVICEGRAPH_FLUSH_INTERVAL": "1s",
    }
    running = start_service(es_url, prefix, tmp_path_factory.mktemp("lens"), extra_env=env)
    yield running
    stop_service(running)
    drop_prefix(es_url, prefix)


@pytest.fixture(scope="module")
def lens(ui_service: Service) -> Iterator[Lens]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium must never fetch a browser or a driver: Debian's are used
    try:
        browser = ensure_browser()
    except BrowserUnavailable as exc:
        pytest.skip(f"no browser for the Lens test: {exc}")
    trace = three_service_trace(lambda: OTLPSpanExporter(endpoint=f"{ui_service.url}/v1/traces"), "lens")
    deadline = time.monotonic() + 60
    while not _dependencies_drawn(ui_service):  # the service graph pairs, flushes, and is refreshed
        assert time.monotonic() < deadline, "the service map never showed the trace's calls"
        time.sleep(0.5)
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser.chromium)
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(str(browser.chromedriver)), options=options)
    try:
        yield Lens(ui_service.url, driver, trace)
    finally:
        driver.quit()


def test_lens_finds_opens_and_maps_a_real_trace(lens: Lens) -> None:
    driver = lens.driver
    names = {"GET /cart", "POST /checkout", "checkout", "reserve"}

    # 1. The service picker lists the services.
    driver.get(f"{lens.url}/zipkin/")
    lens.wait("the add-criterion button", lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=add-button]")).click()
    criterion = lens.wait(
        "the criterion box", lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=criterion-input]")
    )
    criterion.send_keys("serviceName", Keys.ENTER)
    options = lens.wait(
        "the service names",
        lambda d: (
            [o for o in d.find_elements(By.CSS_SELECTOR, "li") if o.text in {"frontend", "checkout", "inventory"}]
            or None
        ),
    )
    lens.screenshot("1-service-picker")
    assert {o.text for o in options} == {"frontend", "checkout", "inventory"}
    next(o for o in options if o.text == "frontend").click()

    # 2. A search shows the trace's row: its root, its four spans.
    lens.button("RUN QUERY").click()
    lens.wait("the trace row", lambda d: "frontend: GET /cart" in d.find_element(By.TAG_NAME, "body").text)
    lens.screenshot("2-search")
    assert "1 Result" in driver.find_element(By.TAG_NAME, "body").text

    # 3. The trace page shows every span, and a span's tags.
    lens.button("SHOW").click()
    lens.wait("the trace page", lambda d: f"/zipkin/traces/{lens.trace.trace_id}" in d.current_url)
    lens.wait("every span", lambda d: all(f": {n}" in d.find_element(By.TAG_NAME, "body").text for n in names))
    body = driver.find_element(By.TAG_NAME, "body").text
    lens.screenshot("3-trace")
    assert "Total Spans 4" in body.replace("\n", " ") and lens.trace.trace_id in body
    assert "http.request.method" in body and "GET" in body  # the root span's tags, shown beside the timeline

    # 4. The dependency page draws the service map (on a canvas: its filter lists the nodes drawn).
    end_ms = time.time_ns() // 1_000_000 + 60_000
    driver.get(f"{lens.url}/zipkin/dependency?startTime={end_ms - 3_600_000}&endTime={end_ms}")
    lens.wait("the map's canvas", lambda d: d.find_element(By.TAG_NAME, "canvas"))
    lens.screenshot("4-dependencies")
    lens.wait("the map's filter", lambda d: d.find_element(By.CSS_SELECTOR, "input.MuiAutocomplete-input")).click()
    nodes = lens.wait(
        "the map's nodes in its filter",
        lambda d: (
            {o.text for o in d.find_elements(By.CSS_SELECTOR, "li.MuiAutocomplete-option, [role=option]") if o.text}
            or None
        ),
    )
    assert nodes >= {"user", "frontend", "checkout", "inventory"}

    # Nothing failed in the browser: no JavaScript error, no API call answered with an error.
    assert lens.console_errors() == []
