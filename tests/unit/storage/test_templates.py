"""The index templates come from the package's own files; finding none is an error, never an empty install."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tracesearch import cli
from tracesearch.settings import Settings
from tracesearch.storage.es import templates
from tracesearch.storage.es.templates import TemplatesNotFound, load_templates


def test_the_package_holds_component_and_index_templates() -> None:
    components, indices = load_templates(Settings(index_prefix="unit"))
    assert {"unit-span-settings", "unit-span-mappings"} <= components.keys()
    assert indices["unit-span"]["index_patterns"] == ["unit-span-*"]
    assert indices["unit-span"]["composed_of"] == ["unit-span-settings", "unit-span-mappings"]


@pytest.mark.parametrize("kind", ["empty", "missing"])
def test_a_folder_without_templates_is_an_error_naming_it(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "index_templates"
    if kind == "empty":
        folder.mkdir()
    with pytest.raises(TemplatesNotFound, match=re.escape(str(folder))):
        load_templates(Settings(), folder)


def test_component_templates_without_index_templates_is_an_error(tmp_path: Path) -> None:
    for source in templates.TEMPLATE_DIR.iterdir():
        if source.name.endswith(templates.COMPONENT_SUFFIX):
            shutil.copy(str(source), tmp_path / source.name)
    with pytest.raises(TemplatesNotFound, match=re.escape(f"*.index.json in {tmp_path}")):
        load_templates(Settings(), tmp_path)


def test_install_templates_command_fails_with_the_reason_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(templates, "TEMPLATE_DIR", tmp_path)
    # Nothing listens there: the command must give up before its first request.
    monkeypatch.setenv("TRACESEARCH_ES_URL", "http://127.0.0.1:1")

    assert cli.main(["install-templates"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert f"no index template files *.component.json in {tmp_path}" in err


def _index_settings(settings: Settings) -> dict[str, dict[str, object]]:
    components, _ = load_templates(settings)
    return {name: body["template"]["settings"]["index"] for name, body in components.items() if "settings" in name}


def test_new_daily_indices_use_best_compression_and_elasticsearchs_refresh_by_default() -> None:
    found = _index_settings(Settings(index_prefix="t"))
    assert set(found) == {"t-span-settings", "t-aggregates-settings"}
    for index in found.values():
        assert index["codec"] == "best_compression"
        assert "refresh_interval" not in index  # an explicit one, even 1s, turns search-idle off


def test_new_daily_span_indices_are_sorted_by_trace_id_when_asked() -> None:
    """A trace's spans then lie together in each segment, and the whole-trace fetch (one search per
    trace) decompresses a few stored-field blocks per trace instead of one per span."""
    assert "sort" not in _index_settings(Settings(index_prefix="t"))["t-span-settings"]  # the default: unsorted
    found = _index_settings(Settings(index_prefix="t", index_sort_by_trace=True))
    assert found["t-span-settings"]["sort"] == {"field": "trace.id", "order": "asc"}
    assert "sort" not in found["t-aggregates-settings"]


def test_a_refresh_interval_that_is_set_is_installed() -> None:
    for index in _index_settings(Settings(index_prefix="t", index_refresh_interval="1s")).values():
        assert index["refresh_interval"] == "1s"


def test_the_span_source_keeps_the_search_only_fields() -> None:
    components, _ = load_templates(Settings(index_prefix="t"))
    assert "_source" not in components["t-span-mappings"]["template"]["mappings"]
