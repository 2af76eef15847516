"""The dev stack's Zipkin UI: fetched once into .devstack/ through ``python -m tracesearch fetch-ui`` (which
checks the pinned checksum), then served by the dev stack's service with TRACESEARCH_UI on."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import launch, lens, locks, maven, service, stack
from devstack.errors import DevstackError
from devstack.paths import REPO_ROOT, downloads_dir
from devstack.settings import Settings
from tests.unit.test_ui_fetch import fake_exec_jar
from tracesearch.api import ui


@pytest.fixture
def downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone whose downloads folder is empty."""
    monkeypatch.setattr(lens, "downloads_dir", lambda repo=REPO_ROOT: tmp_path / "downloads")
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path / "locks")
    return tmp_path / "downloads"


def test_the_dev_stack_fetches_the_release_tracesearch_pins() -> None:
    assert ui.LENS.coordinates == lens.ARTIFACT
    assert lens.jar_path().name == ui.LENS.file_name
    assert lens.assets_dir() == downloads_dir() / "zipkin-lens-3.6.1"


def test_a_folder_fetched_before_is_used_as_it_is(downloads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (downloads / "zipkin-lens-3.6.1").mkdir(parents=True)
    (downloads / "zipkin-lens-3.6.1" / "index.html").write_text("<html></html>")

    def no_download(coordinates: str, target: Path) -> None:
        raise AssertionError("downloaded again")

    monkeypatch.setattr(maven, "copy_artifact", no_download)
    assert lens.ensure_assets() == downloads / "zipkin-lens-3.6.1"


def test_a_download_that_is_not_the_pinned_release_fails_the_start(
    downloads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real ``python -m tracesearch fetch-ui``: the fake jar's checksum is not the pinned one."""
    copied: list[str] = []

    def fake_download(coordinates: str, target: Path) -> None:
        copied.append(coordinates)
        fake_exec_jar(target)

    monkeypatch.setattr(maven, "copy_artifact", fake_download)
    with pytest.raises(DevstackError) as failed:
        lens.ensure_assets()
    assert copied == ["io.zipkin:zipkin-server:3.6.1:jar:exec"]
    assert "could not take Zipkin's UI out of" in str(failed.value)
    assert "not the pinned" in str(failed.value) and "refused (nothing was extracted)" in str(failed.value)
    assert not (downloads / "zipkin-lens-3.6.1").exists()


def test_the_dev_stack_service_runs_with_the_ui_on() -> None:
    settings = Settings.from_env({"TRACESEARCH_PIPELINE": "kafka"})
    env = service.service_spec(settings).env
    assert env["TRACESEARCH_UI"] == "true"
    assert env["TRACESEARCH_UI_DIR"] == str(lens.assets_dir())
    assert launch.ui_env(Path("/x")) == {"TRACESEARCH_UI": "true", "TRACESEARCH_UI_DIR": "/x"}
    # The ingester serves no UI.
    assert "TRACESEARCH_UI" not in service.ingester_spec(settings).env


def test_the_stack_prints_the_ui_url() -> None:
    lines = stack.endpoint_lines(Settings.from_env({"TRACESEARCH_PORT": "5000"}))
    assert "Zipkin UI         http://127.0.0.1:5000/zipkin/" in lines
