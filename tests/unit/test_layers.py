"""The layer rules of pyproject.toml's [tool.importlinter] hold, and a wrong import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the ``tracesearch`` package found in ``root``, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "tracesearch", tmp_path / "tracesearch", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_every_contract(copy_of_the_package: Path) -> None:
    answer = lint_imports(copy_of_the_package)
    assert answer.returncode == 0, answer.stdout + answer.stderr


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("query/conditions.py", "import flask", "The pure core"),
        ("storage/es/span_reader.py", "from tracesearch.api import http_errors", "Storage knows nothing of HTTP"),
        ("services/query.py", "from tracesearch.storage.es import compiler", "Services and the pipeline"),
        ("pipeline/store.py", "from tracesearch import components", "Only the entry points"),
    ],
)
def test_a_wrong_import_breaks_its_contract(
    copy_of_the_package: Path, module: str, wrong_import: str, contract: str
) -> None:
    path = copy_of_the_package / "tracesearch" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # the wrong import\n")
    answer = lint_imports(copy_of_the_package)
    assert answer.returncode != 0
    assert f"{contract}" in answer.stdout.replace("\n", " ") and "BROKEN" in answer.stdout
