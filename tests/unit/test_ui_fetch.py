"""Getting Lens's files: the pinned checksum refuses any other jar, only Lens's static files are taken
out (into a folder renamed into place, never over a folder that is not an earlier fetch), and
``python -m tracesearch fetch-ui`` downloads with mvn, takes a jar downloaded by hand, or says what to do.

The jars are small fakes built here with the layout of zipkin-server's exec jar; the real one is
fetched in tests/integration/test_zipkin_ui.py."""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest

from tracesearch import cli
from tracesearch.api import ui

LENS_FILES = {
    "zipkin-lens/index.html": b'<base href="/zipkin/"><script src="/zipkin/static/js/index.1.js"></script>',
    "zipkin-lens/static/js/index.1.js": b"console.log('lens')",
    "zipkin-lens/favicon.ico": b"\x00\x00\x01\x00",
}


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def fake_exec_jar(path: Path, lens_files: dict[str, bytes] = LENS_FILES, version: str = "3.6.1") -> Path:
    """zipkin-server's exec jar in small: Spring Boot's layout, Lens's jar among the libraries."""
    lens_jar = zipped({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", **lens_files})
    path.write_bytes(
        zipped(
            {
                "META-INF/MANIFEST.MF": b"Main-Class: org.springframework.boot.loader.launch.PropertiesLauncher\n",
                "BOOT-INF/classes/zipkin-server-shared.yml": b"zipkin: {}\n",
                "BOOT-INF/lib/armeria-1.0.jar": zipped({"com/linecorp/A.class": b"\xca\xfe"}),
                f"BOOT-INF/lib/zipkin-lens-{version}.jar": lens_jar,
            }
        )
    )
    return path


def release_of(jar: Path) -> ui.Release:
    """The pinned release, but with this jar's checksum."""
    return ui.Release(ui.LENS.version, hashlib.sha256(jar.read_bytes()).hexdigest(), 1)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_jar_that_is_not_the_pinned_release_is_refused(tmp_path: Path) -> None:
    jar = fake_exec_jar(tmp_path / "zipkin-server-3.6.1-exec.jar")
    actual = hashlib.sha256(jar.read_bytes()).hexdigest()
    with pytest.raises(ui.ChecksumMismatch) as refused:
        ui.extract(jar, tmp_path / "lens")
    message = str(refused.value)
    assert f"{jar} has SHA-256 {actual}, not the pinned {ui.LENS.sha256}" in message
    assert "io.zipkin:zipkin-server:3.6.1:jar:exec" in message and "refused (nothing was extracted)" in message
    assert not (tmp_path / "lens").exists()


def test_the_pinned_release_is_zipkin_server_3_6_1s_exec_jar() -> None:
    assert ui.LENS.coordinates == "io.zipkin:zipkin-server:3.6.1:jar:exec"
    assert ui.LENS.url == "https://repo1.maven.org/maven2/io/zipkin/zipkin-server/3.6.1/zipkin-server-3.6.1-exec.jar"
    assert ui.LENS.lens_jar == "BOOT-INF/lib/zipkin-lens-3.6.1.jar"
    assert len(ui.LENS.sha256) == 64 and int(ui.LENS.sha256, 16)


def test_only_lens_static_files_are_taken_out(tmp_path: Path) -> None:
    jar = fake_exec_jar(tmp_path / "server.jar")
    names = ui.extract(jar, tmp_path / "lens", release_of(jar))
    assert names == ["favicon.ico", "index.html", "static/js/index.1.js"]
    files = tree(tmp_path / "lens")
    assert set(files) == {*names, ui.MARKER}
    assert files["index.html"] == LENS_FILES["zipkin-lens/index.html"]
    assert files[ui.MARKER].decode().startswith("io.zipkin:zipkin-server:3.6.1:jar:exec sha256=")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lens", "server.jar"]  # no staging folder left


def test_a_new_fetch_replaces_the_last_one_whole(tmp_path: Path) -> None:
    first = fake_exec_jar(tmp_path / "first.jar")
    ui.extract(first, tmp_path / "lens", release_of(first))
    second_files = {"zipkin-lens/index.html": b"<html>2</html>", "zipkin-lens/static/js/index.2.js": b"2"}
    second = fake_exec_jar(tmp_path / "second.jar", second_files)
    ui.extract(second, tmp_path / "lens", release_of(second))
    assert set(tree(tmp_path / "lens")) == {"index.html", "static/js/index.2.js", ui.MARKER}


def test_a_folder_that_is_not_an_earlier_fetch_is_left_alone(tmp_path: Path) -> None:
    jar = fake_exec_jar(tmp_path / "server.jar")
    folder = tmp_path / "important"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ui.UiAssetsError, match="is not empty and was not made by fetch-ui"):
        ui.extract(jar, folder, release_of(jar))
    assert tree(folder) == {"notes.txt": b"mine"}
    ui.extract(jar, tmp_path / "empty", release_of(jar))  # an empty or new folder is fine


@pytest.mark.parametrize("name", ["zipkin-lens/../escaped.js", "zipkin-lens//etc/x", "zipkin-lens/a\\..\\b"])
def test_a_file_that_would_land_outside_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    jar = fake_exec_jar(tmp_path / "server.jar", {**LENS_FILES, name: b"x"})
    with pytest.raises(ui.UiAssetsError, match="refused a file outside the UI's folder"):
        ui.extract(jar, tmp_path / "out" / "lens", release_of(jar))
    assert not (tmp_path / "out" / "escaped.js").exists() and not (tmp_path / "out" / "lens").exists()


def test_a_jar_without_lens_is_refused(tmp_path: Path) -> None:
    jar = fake_exec_jar(tmp_path / "server.jar", version="3.5.0")
    without_lens = re.escape("has no BOOT-INF/lib/zipkin-lens-3.6.1.jar: not zipkin-server 3.6.1's exec jar")
    with pytest.raises(ui.UiAssetsError, match=without_lens):
        ui.extract(jar, tmp_path / "lens", release_of(jar))
    not_a_zip = tmp_path / "text.jar"
    not_a_zip.write_text("not a zip")
    with pytest.raises(ui.UiAssetsError, match="is not a valid jar"):
        ui.extract(not_a_zip, tmp_path / "lens", release_of(not_a_zip))


# ------------------------------------------------------------------------------------------ the command


def fake_mvn(bin_dir: Path, jar: Path) -> Path:
    """An ``mvn`` that "downloads" ``jar`` to -DoutputDirectory and notes its arguments."""
    bin_dir.mkdir()
    script = bin_dir / "mvn"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {bin_dir}/args\n'
        'for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac; done\n'
        f'cp {jar} "$out/zipkin-server-3.6.1-exec.jar"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_fetch_ui_downloads_with_mvn_checks_and_extracts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jar = fake_exec_jar(tmp_path / "server.jar")
    bin_dir = fake_mvn(tmp_path / "bin", jar)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")  # found before a real mvn
    monkeypatch.setattr(ui, "LENS", release_of(jar))
    assert cli.main(["fetch-ui", "--into", str(tmp_path / "lens")]) == 0
    assert (tmp_path / "lens" / "index.html").is_file()
    assert "-Dartifact=io.zipkin:zipkin-server:3.6.1:jar:exec" in (bin_dir / "args").read_text()
    out = capsys.readouterr().out
    assert "checksum verified" in out and f"TRACESEARCH_UI=true TRACESEARCH_UI_DIR={tmp_path / 'lens'}" in out


def test_fetch_ui_without_maven_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn there
    assert cli.main(["fetch-ui", "--into", str(tmp_path / "lens")]) == 1
    err = capsys.readouterr().err
    assert "Maven (mvn) is not on PATH" in err
    assert f"download {ui.LENS.url} (135 MB)" in err
    assert f"python -m tracesearch fetch-ui --jar zipkin-server-3.6.1-exec.jar --into {tmp_path / 'lens'}" in err


def test_fetch_ui_refuses_a_jar_of_another_checksum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jar = fake_exec_jar(tmp_path / "zipkin-server-3.6.1-exec.jar")
    assert cli.main(["fetch-ui", "--jar", str(jar), "--into", str(tmp_path / "lens")]) == 1
    assert "not the pinned" in capsys.readouterr().err
    assert not (tmp_path / "lens").exists()


def test_fetch_ui_goes_into_ui_dir_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jar = fake_exec_jar(tmp_path / "server.jar")
    monkeypatch.setattr(ui, "LENS", release_of(jar))
    monkeypatch.setenv("TRACESEARCH_UI_DIR", str(tmp_path / "lens"))
    assert cli.main(["fetch-ui", "--jar", str(jar)]) == 0
    assert (tmp_path / "lens" / "index.html").is_file()
    monkeypatch.delenv("TRACESEARCH_UI_DIR")
    assert cli.main(["fetch-ui", "--jar", str(jar)]) == 2
    assert "say where: --into DIR, or set TRACESEARCH_UI_DIR" in capsys.readouterr().err
