"""The Elasticsearch distribution: download the integ-test zip, unpack it.

The integ-test zip is the smallest official build on Maven Central: no
bundled JDK and only a few modules (see docs in real-servers.md §1; notably
no ``GET /`` handler, no analysis-common, no painless).
"""

from __future__ import annotations

import logging
import shutil
import stat
import zipfile
from pathlib import Path

from devstack import maven
from devstack.errors import DevstackError
from devstack.paths import downloads_dir

log = logging.getLogger(__name__)

ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
UNPACKED_MARKER = ".devstack-unpacked"


def zip_path(version: str) -> Path:
    return downloads_dir() / f"elasticsearch-{version}.zip"


def download(version: str) -> Path:
    """The distribution zip, downloaded from Maven Central on first use."""
    target = zip_path(version)
    if not target.is_file():
        log.info("elasticsearch: downloading %s from Maven Central", version)
        target.parent.mkdir(parents=True, exist_ok=True)
        maven.copy_artifact(ARTIFACT.format(version=version), target)
    return target


def unpack(archive: Path, home: Path) -> None:
    """Unpack ``archive`` so that its top folder becomes ``home``.

    Python's zipfile drops Unix permissions, so they are restored from each
    entry's external attributes, and the bin/ launchers are made executable
    regardless (a zip written on Windows carries no modes).
    """
    if (home / UNPACKED_MARKER).is_file():
        return
    log.info("elasticsearch: unpacking %s", archive.name)
    tmp = home.parent / f".unpack-{home.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                extracted = zipped.extract(info, tmp)
                mode = unix_mode(info)
                if mode is not None and not info.is_dir():
                    Path(extracted).chmod(mode)
    except zipfile.BadZipFile as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DevstackError(f"{archive} is not a valid zip ({error}); delete it to download it again") from error
    tops = list(tmp.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        raise DevstackError(f"{archive}: expected one top folder, found {tops}")
    make_launchers_executable(tops[0] / "bin")
    shutil.rmtree(home, ignore_errors=True)
    tops[0].replace(home)
    tmp.rmdir()
    (home / UNPACKED_MARKER).write_text("")


def unix_mode(info: zipfile.ZipInfo) -> int | None:
    """Permission bits stored by a Unix zip tool, or None if there are none."""
    mode = (info.external_attr >> 16) & 0o7777
    return mode or None


def make_launchers_executable(bin_dir: Path) -> None:
    executable = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    for launcher in bin_dir.iterdir():
        if launcher.is_file() and launcher.suffix not in {".bat", ".exe"}:
            launcher.chmod(launcher.stat().st_mode | executable)
