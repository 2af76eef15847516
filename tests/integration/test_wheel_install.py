"""The built wheel installs its own index templates, tried as a new user would: ``pip install`` of the
wheel into a fresh virtual environment outside the checkout, then ``tracesearch install-templates``.

The build and the install use the package index (setuptools for the build, the runtime dependencies for
the install), as a user's would: about 7 s here (copy 0.03 s, build 2.2 s, venv and install 3.2 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import REPO, drop_prefix

COMPONENTS = (
    "aggregates-settings",
    "servicegraph-mappings",
    "servicelatency-mappings",
    "span-mappings",
    "span-settings",
    "spanmetrics-mappings",
)
INDEX_TEMPLATES = ("servicegraph", "servicelatency", "span", "spanmetrics")


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def checked(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = run(args, cwd, env)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def copy_sources(dest: Path) -> Path:
    """What git would commit, working changes included. Not the checkout itself: setuptools reuses its
    build/lib, where files of earlier builds linger and end up in the wheel."""
    listed = checked(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def build_wheel(tmp: Path) -> Path:
    sources = copy_sources(tmp / "src")
    checked([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(sources)], tmp)
    (wheel,) = (tmp / "dist").glob("tracesearch-*.whl")
    return wheel


def install_in_fresh_venv(wheel: Path, venv: Path) -> Path:
    # No pip in the new venv: this checkout's pip installs into it (--python), which saves seeding one.
    checked([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv.parent)
    python = venv / "bin" / "python"
    checked([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)], venv.parent)
    return python


def user_env(es_url: str, prefix: str) -> dict[str, str]:
    """The caller's environment without anything that could put this checkout on the path or change the
    settings."""
    kept = {
        key: value for key, value in os.environ.items() if not key.startswith(("TRACESEARCH_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**kept, "TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix}


def template_names(es_url: str, kind: str, prefix: str) -> set[str]:
    answer = requests.get(f"{es_url}/_{kind}/{prefix}-*", timeout=30)
    answer.raise_for_status()
    return {entry["name"] for entry in answer.json()[f"{kind}s"]}


@pytest.fixture
def prefix(es_url: str) -> Iterator[str]:
    name = f"it-wheel-{uuid.uuid4().hex[:8]}"
    yield name
    drop_prefix(es_url, name)


def test_installed_wheel_installs_its_index_templates(es_url: str, prefix: str, tmp_path: Path) -> None:
    python = install_in_fresh_venv(build_wheel(tmp_path), tmp_path / "venv")
    user_dir = tmp_path / "home"
    user_dir.mkdir()
    env = user_env(es_url, prefix)
    imported = checked([str(python), "-c", "import tracesearch; print(tracesearch.__file__)"], user_dir, env)
    assert Path(imported.strip()).is_relative_to(tmp_path / "venv"), f"tracesearch imported from {imported}"

    done = run([str(python.parent / "tracesearch"), "install-templates"], user_dir, env)

    components = {f"{prefix}-{name}" for name in COMPONENTS}
    index_templates = {f"{prefix}-{name}" for name in INDEX_TEMPLATES}
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip().removeprefix("installed:").split(",")
    assert {name.strip() for name in printed} == components | index_templates, done.stdout
    assert template_names(es_url, "component_template", prefix) == components
    assert template_names(es_url, "index_template", prefix) == index_templates
