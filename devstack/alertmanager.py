"""A real Prometheus Alertmanager for the notifier's integration test, built from the Go module proxy.

``github.com/prometheus/alertmanager`` v0.35.0 (Apache-2.0) is fetched with ``go mod download`` (the
machine's GOPROXY, checked against go.sum's database like any module) and ``cmd/alertmanager`` is built
once into ``.devstack/go/alertmanager-v0.35.0``; later runs find the binary and start at once.

Why not ``go install ...@v0.35.0``: the module's zip on the proxy has no ``ui/app/dist`` (the web UI is
built by npm and git-ignored), and ``ui/web.go`` embeds it, so ``go install`` stops with "pattern
app/dist: no matching files found". The build therefore copies the module's source out of the module
cache and puts a one-page placeholder where the UI would be: the API the tests use is untouched, only
the browser UI is missing. ``go`` refuses overlays of files under GOMODCACHE, hence the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from devstack.errors import DevstackError
from devstack.go_tools import BUILD_TIMEOUT_S, GoMissing, go
from devstack.paths import REPO_ROOT, state_dir

MODULE = "github.com/prometheus/alertmanager"
VERSION = "v0.35.0"
PACKAGE = "./cmd/alertmanager"
READY_TIMEOUT_S = 30.0
GO_MISSING = (
    "Go (go) not found: the Alertmanager notifier's test builds Prometheus Alertmanager v0.35.0 from the Go module "
    "proxy with it; install Go 1.26+ (https://go.dev/doc/install) or put go on PATH"
)
PLACEHOLDER = b"<!doctype html><title>Alertmanager</title><p>UI not built (tracesearch test build; the API works)</p>\n"

__all__ = ["Alertmanager", "GoMissing", "binary", "start", "stop"]


def binary(repo: Path = REPO_ROOT) -> Path:
    """The Alertmanager executable, built now unless a build of this version is cached."""
    target = state_dir(repo) / "go" / f"alertmanager-{VERSION}"
    if target.is_file():
        return target
    try:
        executable = go()
    except GoMissing:
        raise GoMissing(GO_MISSING) from None
    source = _module_source(executable)
    workdir = state_dir(repo) / "go" / "src" / f"alertmanager-{VERSION}"
    _copy_writable(source, workdir)
    for ui in ("elm", "mantine"):
        placeholder = workdir / "ui" / "app" / "dist" / ui / "index.html"
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.write_bytes(PLACEHOLDER)
    partial = target.with_name(f".{target.name}.partial")
    stamp = f"-X github.com/prometheus/common/version.Version={VERSION.removeprefix('v')}"  # `--version` says it
    _go(executable, ["build", "-ldflags", stamp, "-o", str(partial), PACKAGE], cwd=workdir)
    # Renamed last: an interrupted build never looks like a finished one.
    partial.replace(target)
    shutil.rmtree(workdir, ignore_errors=True)
    return target


def _module_source(executable: str) -> Path:
    done = _go(executable, ["mod", "download", "-json", f"{MODULE}@{VERSION}"], cwd=Path("/"))
    folder = json.loads(done.stdout).get("Dir")
    if not folder:
        raise DevstackError(f"go mod download {MODULE}@{VERSION} gave no source folder:\n{done.stdout[-2000:]}")
    return Path(folder)


def _copy_writable(source: Path, workdir: Path) -> None:
    """The module cache is read-only; the copy must take the placeholder UI files."""
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(source, workdir)
    for folder, _dirs, files in os.walk(workdir):
        for name in [".", *files]:
            path = Path(folder, name)
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _go(executable: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The machine's own GOFLAGS kept; no VCS stamp (the copy has no .git).
    env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod -buildvcs=false".strip()}
    try:
        done = subprocess.run(
            [executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise DevstackError(f"go {args[0]} of {MODULE}@{VERSION} took over {BUILD_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise DevstackError(f"go {' '.join(args[:2])} of {MODULE}@{VERSION} failed:\n{done.stderr.strip()[-3000:]}")
    return done


CONFIG = """\
global:
  resolve_timeout: 1m
route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


@dataclass
class Alertmanager:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(executable: Path, folder: Path) -> Alertmanager:
    """Run Alertmanager on a free loopback port with a null receiver, storage in ``folder``; wait for ready."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = folder / "alertmanager.yml"
    config.write_text(CONFIG)
    port = _free_port()
    log = folder / "alertmanager.log"
    command = [
        str(executable),
        f"--config.file={config}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: one instance, nothing else bound
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    running = Alertmanager(process, f"http://127.0.0.1:{port}", log)
    _wait_ready(running)
    return running


def _wait_ready(running: Alertmanager) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise DevstackError(
                f"alertmanager exited with {running.process.returncode}: {running.log.read_text()[-2000:]}"
            )
        try:
            if requests.get(f"{running.url}/-/ready", timeout=1.0).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop(running)
    raise DevstackError(f"alertmanager not ready within {READY_TIMEOUT_S:.0f} s: {running.log.read_text()[-2000:]}")


def stop(running: Alertmanager) -> None:
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait()
