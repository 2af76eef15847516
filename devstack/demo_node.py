"""The demo's Node.js service ("recommendations"): its npm dependencies installed once, and its command.

The sources live in ``demo/node/recommendations/`` (package.json with pinned versions, the committed
package-lock.json, ``instrumentation.js``, ``server.js``). ``node_modules`` never goes into the source
tree: the folder is copied into the git-ignored ``.devstack/demo/node/recommendations/``, ``npm ci`` runs
there (once per lock file: about 10 s and 75 MB from the npm registry) and the service runs from there.
A source edit re-copies the files (instant); a lock change re-installs.

Python API (demo orchestrator, tests)::

    app = devstack.demo_node.ensure_recommendations()
    argv, env = devstack.demo_node.recommendations_command(port, log_file, catalog_url, otel_env, app_dir=app)
    subprocess.Popen(argv, env=env)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from devstack import locks
from devstack.errors import DevstackError
from devstack.paths import REPO_ROOT, state_dir

log = logging.getLogger(__name__)

NAME = "demo-node-recommendations"
SOURCE_DIR = REPO_ROOT / "demo" / "node" / "recommendations"
LOCK_FILES = ("package.json", "package-lock.json")
SOURCE_FILES = (*LOCK_FILES, "instrumentation.js", "server.js")
MIN_NODE_MAJOR = 18
INSTALLED_MARK = ".installed"  # holds the hash of the lock files node_modules was installed from
COPIED_MARK = ".copied"  # holds the hash of every source file copied
OUTPUT_TAIL_CHARS = 3000
NPM_TIMEOUT_S = 600.0
# The contract of the service (notes/issue10-demo-spec.md): it speaks B3 multi only, in and out.
PROPAGATORS = "b3multi"
OTEL_DEFAULTS = {
    "OTEL_SERVICE_NAME": "recommendations",
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_BSP_SCHEDULE_DELAY": "1000",
}

NODE_MISSING = (
    f"Node.js {MIN_NODE_MAJOR}+ with npm is needed for the demo's recommendations service and {{what}}: "
    "install it (apt-get install nodejs npm, or https://nodejs.org) and put node and npm on PATH"
)


def install_dir(repo: Path = REPO_ROOT) -> Path:
    """Where the service is copied, installed and run from (git-ignored)."""
    return state_dir(repo) / "demo" / "node" / "recommendations"


def node() -> str:
    """The ``node`` executable, checked to be recent enough."""
    path = shutil.which("node")
    if path is None:
        raise DevstackError(NODE_MISSING.format(what="node was not found"))
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False, timeout=30)
    major = parse_node_major(result.stdout)
    if major is None or major < MIN_NODE_MAJOR:
        found = result.stdout.strip() or result.stderr.strip() or f"exit {result.returncode}"
        raise DevstackError(NODE_MISSING.format(what=f"{path} is {found}"))
    return path


def npm() -> str:
    path = shutil.which("npm")
    if path is None:
        raise DevstackError(NODE_MISSING.format(what="npm was not found"))
    return path


def parse_node_major(version: str) -> int | None:
    """``v20.20.2`` -> 20."""
    match = re.match(r"\s*v?(\d+)\.", version)
    return int(match.group(1)) if match else None


def files_hash(folder: Path, names: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return digest.hexdigest()


def _mark(folder: Path, name: str) -> str:
    path = folder / name
    return path.read_text().strip() if path.is_file() else ""


def _up_to_date(target: Path, source: Path) -> bool:
    installed = _mark(target, INSTALLED_MARK) == files_hash(source, LOCK_FILES)
    return installed and _mark(target, COPIED_MARK) == files_hash(source, SOURCE_FILES)


def ensure_recommendations(source: Path = SOURCE_DIR, target: Path | None = None) -> Path:
    """The folder to run the service from, its npm dependencies installed; checks node and npm first."""
    target = target or install_dir()
    node()
    if not _up_to_date(target, source):
        with locks.held(NAME):  # two test sessions or shells starting at once install once
            if not _up_to_date(target, source):
                _prepare(source, target)
    return target


def _prepare(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    lock_hash = files_hash(source, LOCK_FILES)
    if _mark(target, INSTALLED_MARK) != lock_hash:
        (target / INSTALLED_MARK).unlink(missing_ok=True)  # an interrupted install never looks complete
        for name in LOCK_FILES:
            shutil.copy2(source / name, target / name)
        _npm_ci(target)
        (target / INSTALLED_MARK).write_text(lock_hash + "\n")
    for name in SOURCE_FILES:
        shutil.copy2(source / name, target / name)
    (target / COPIED_MARK).write_text(files_hash(source, SOURCE_FILES) + "\n")


def _npm_ci(folder: Path) -> None:
    # No install scripts: nothing in the tree needs one (protobufjs's only checks its CLI's peers).
    command = [npm(), "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
    log.info("recommendations: installing its npm dependencies into %s (once per lock file)", folder)
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise DevstackError(
            f"npm ci in {folder} took more than {NPM_TIMEOUT_S:.0f} s: is the npm registry reachable?"
        ) from error
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-OUTPUT_TAIL_CHARS:]
        raise DevstackError(
            f"npm ci failed in {folder} (exit {result.returncode}); check the npm registry is reachable "
            f"(npm config get registry):\n{output}"
        )
    log.info("recommendations: npm dependencies installed in %.1f s", time.monotonic() - started)


def recommendations_command(
    port: int,
    log_file: Path | str,
    catalog_url: str,
    otel_env: Mapping[str, str],
    *,
    app_dir: Path | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and the whole environment that start the service on ``127.0.0.1:port``.

    ``app_dir`` is what ``ensure_recommendations()`` returned; without it this calls that (instant when
    installed). The environment is this process's without its OTEL_* variables, then OTEL_DEFAULTS,
    then ``otel_env`` (endpoint, service name, resource attributes...), then the service's own:
    PORT, DEMO_LOG_FILE, CATALOG_URL and OTEL_PROPAGATORS=b3multi (always: the service's contract).
    """
    folder = app_dir or ensure_recommendations()
    argv = [node(), "--require", str(folder / "instrumentation.js"), str(folder / "server.js")]
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(OTEL_DEFAULTS)
    env.update(otel_env)
    env.update(
        {
            "PORT": str(port),
            "DEMO_LOG_FILE": str(log_file),
            "CATALOG_URL": catalog_url,
            "OTEL_PROPAGATORS": PROPAGATORS,
        }
    )
    return argv, env
