"""Where the dev stack keeps downloads, configuration, data, pid and log files.

Everything is resolved from the repository root (the parent of this package),
so any clone works without configuration.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Outside the repository for when the repository is not reachable by the
# unprivileged Elasticsearch user (e.g. a clone under /root, mode 700).
SHARED_RUNTIME_PARENT = Path("/var/tmp")


def state_dir(repo: Path = REPO_ROOT) -> Path:
    """The git-ignored folder for everything the dev stack writes."""
    return repo / ".devstack"


def downloads_dir(repo: Path = REPO_ROOT) -> Path:
    return state_dir(repo) / "downloads"


def processes_dir(repo: Path = REPO_ROOT) -> Path:
    """Pid and log files of the Python processes (service, ingester)."""
    return state_dir(repo) / "processes"


def locks_dir(repo: Path = REPO_ROOT) -> Path:
    return state_dir(repo) / "locks"


def shared_runtime_dir(repo: Path = REPO_ROOT) -> Path:
    """A per-clone folder under /var/tmp (the hash keeps clones apart)."""
    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:12]
    return SHARED_RUNTIME_PARENT / f"tracesearch-devstack-{digest}"


def others_can_traverse(path: Path) -> bool:
    """True when a user with no special rights can reach ``path``.

    Checks the "others" execute bit on the path and every ancestor that
    exists; a group or ACL grant is not assumed, because the dev stack's
    system user belongs to no group of ours.
    """
    for part in (path, *path.parents):
        if not part.exists():
            continue
        if not part.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def runtime_dir(*, for_other_user: bool, repo: Path = REPO_ROOT) -> Path:
    """Where processes that run as another user keep their files.

    In the repository when that user can reach it, else under /var/tmp.
    """
    own = state_dir(repo)
    if not for_other_user or others_can_traverse(own):
        return own
    return shared_runtime_dir(repo)
