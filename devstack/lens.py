"""Zipkin's UI (Lens) for the dev stack's service: its files in ``.devstack/downloads/``, fetched once.

Lens is not published on its own: its 2.6 MB of static files are inside zipkin-server's exec jar
(135 MB) on Maven Central. ``maven.copy_artifact`` downloads that jar like the Elasticsearch zip;
``python -m tracesearch fetch-ui --jar`` (the command a production install runs, so the dev stack tries
it too) checks the jar's pinned SHA-256 and writes Lens's files into a folder whole. The jar is deleted
then: the folder is the cache, and Maven keeps its own copy in ~/.m2, so another fetch copies locally.

Python API (tests)::

    folder = devstack.lens.ensure_assets()   # for TRACESEARCH_UI_DIR
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from devstack import locks, maven
from devstack.errors import DevstackError
from devstack.paths import REPO_ROOT, downloads_dir

log = logging.getLogger(__name__)

NAME = "lens"
# tracesearch.api.ui.LENS pins the checksum of this release's jar; tests/devstack check both agree.
VERSION = "3.6.1"
ARTIFACT = f"io.zipkin:zipkin-server:{VERSION}:jar:exec"
OUTPUT_TAIL_CHARS = 3000


def assets_dir(repo: Path = REPO_ROOT) -> Path:
    """Where the dev stack keeps Lens's files (TRACESEARCH_UI_DIR of its service)."""
    return downloads_dir(repo) / f"zipkin-lens-{VERSION}"


def jar_path(repo: Path = REPO_ROOT) -> Path:
    return downloads_dir(repo) / f"zipkin-server-{VERSION}-exec.jar"


def server_jar_path(repo: Path = REPO_ROOT) -> Path:
    """The exec jar kept whole for ``make bench-peers``, which runs Zipkin itself (Lens needs only its files)."""
    return downloads_dir(repo) / f"zipkin-server-{VERSION}" / f"zipkin-server-{VERSION}-exec.jar"


def ensure_server_jar() -> Path:
    """Zipkin server's exec jar, the artifact Lens comes from, downloaded once and kept."""
    jar = server_jar_path()
    if not jar.is_file():
        with locks.held(NAME):
            if not jar.is_file():
                log.info("zipkin: downloading %s from Maven Central (135 MB, once)", ARTIFACT)
                jar.parent.mkdir(parents=True, exist_ok=True)
                maven.copy_artifact(ARTIFACT, jar)
    return jar


def ensure_assets(python: str = sys.executable) -> Path:
    """Lens's files, downloaded and checked on first use; the folder."""
    folder = assets_dir()
    if not _complete(folder):
        with locks.held(NAME):  # two test sessions or shells starting at once fetch once
            if not _complete(folder):
                _fetch(folder, python)
    return folder


def _complete(folder: Path) -> bool:
    # fetch-ui renames a finished folder into place: with its index.html there, the rest is too.
    return (folder / "index.html").is_file()


def _fetch(folder: Path, python: str) -> None:
    kept = server_jar_path()
    # `make bench-peers` keeps the whole jar: Lens's files come from that copy, which stays.
    jar = kept if kept.is_file() else jar_path()
    if jar != kept:
        log.info("lens: downloading %s from Maven Central (135 MB, once)", ARTIFACT)
        jar.parent.mkdir(parents=True, exist_ok=True)
        maven.copy_artifact(ARTIFACT, jar)
    command = [python, "-m", "tracesearch", "fetch-ui", "--jar", str(jar), "--into", str(folder)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-OUTPUT_TAIL_CHARS:]
        raise DevstackError(f"could not take Zipkin's UI out of {jar} (exit {result.returncode}):\n{output}")
    if jar != kept:
        jar.unlink()
    log.info("lens: Zipkin's UI is in %s", folder)
