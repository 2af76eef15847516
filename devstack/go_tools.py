"""Building the repository's small Go programs (``tests/go/*``) with the machine's ``go``.

Each program is built once into ``.devstack/go/<name>`` and rebuilt only when its sources change (a
hash of its ``.go`` files, ``go.mod`` and ``go.sum`` names the binary). Modules come through the
machine's own GOPROXY (and its module cache); ``-mod=mod`` lets ``go`` complete go.sum's checks if a
toolchain wants more than the committed file lists, without changing the program's pinned versions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from devstack.errors import DevstackError
from devstack.paths import REPO_ROOT, state_dir

GO_PROGRAMS = REPO_ROOT / "tests" / "go"
BUILD_TIMEOUT_S = 600.0
GO_MISSING = (
    "Go (go) not found: install Go 1.26+ (https://go.dev/doc/install, or apt-get install golang-go when "
    "Debian's is new enough) or put go on PATH; the jaegerremote client test builds a Go program with it"
)


class GoMissing(DevstackError):
    """No ``go`` on PATH: tests that need a Go program skip with this message."""


def go() -> str:
    path = shutil.which("go")
    if path is None:
        raise GoMissing(GO_MISSING)
    return path


def _sources_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted([*folder.glob("*.go"), folder / "go.mod", folder / "go.sum"]):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(name: str, repo: Path = REPO_ROOT) -> Path:
    """The binary of ``tests/go/<name>``, built now unless a build of the same sources is cached."""
    folder = repo / "tests" / "go" / name
    if not (folder / "go.mod").is_file():
        raise DevstackError(f"no Go program at {folder} (go.mod missing)")
    executable = go()
    target = state_dir(repo) / "go" / f"{name}-{_sources_hash(folder)}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    # The machine's own GOFLAGS kept; no VCS stamp (a worktree or an export has no .git to read).
    env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod -buildvcs=false".strip()}
    try:
        done = subprocess.run(
            [executable, "build", "-o", str(partial), "."],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DevstackError(f"go build of {folder} took over {BUILD_TIMEOUT_S:.0f} s (module downloads?)") from None
    if done.returncode != 0:
        raise DevstackError(f"go build of {folder} failed:\n{done.stderr.strip()[-3000:]}")
    # Renamed last: an interrupted build never looks like a finished one.
    partial.replace(target)
    return target


def build_module_program(package: str, version: str, name: str, repo: Path = REPO_ROOT) -> Path:
    """The binary of ``package`` (a main package) at module ``version``, built once through the Go proxy.

    A throw-away main module in ``.devstack/go/<name>-<version>-src`` requires the program's module: a
    dependency's ``replace`` lines are ignored there, where ``go install pkg@version`` refuses them.
    """
    target = state_dir(repo) / "go" / f"{name}-{version}"
    if target.is_file():
        return target
    executable = go()
    folder = target.with_name(f"{target.name}-src")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    partial = target.with_name(f".{target.name}.partial")
    env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod -buildvcs=false".strip()}
    for argv in (
        [executable, "mod", "init", f"local/{name}build"],
        [executable, "get", f"{package}@{version}"],
        [executable, "build", "-o", str(partial), package],
    ):
        _run_go(argv, folder, env)
    partial.replace(target)
    shutil.rmtree(folder, ignore_errors=True)
    return target


def _run_go(argv: list[str], folder: Path, env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            argv, cwd=folder, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S * 2, check=False
        )
    except subprocess.TimeoutExpired:
        raise DevstackError(f"{' '.join(argv[1:3])} in {folder} took over {BUILD_TIMEOUT_S * 2:.0f} s") from None
    if done.returncode != 0:
        raise DevstackError(f"{' '.join(argv[1:])} in {folder} failed:\n{done.stderr.strip()[-3000:]}")
