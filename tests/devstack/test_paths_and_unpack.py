import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import es_dist, paths
from devstack.errors import DevstackError


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user can reach (pytest's own tmp_path lives under a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="devstack-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_traversal_check_sees_a_closed_ancestor(open_dir: Path) -> None:
    closed = open_dir / "root-home"
    inner = closed / "repo"
    inner.mkdir(parents=True)
    closed.chmod(0o755)
    assert paths.others_can_traverse(inner)
    assert paths.runtime_dir(for_other_user=True, repo=inner) == inner / ".devstack"
    closed.chmod(0o700)
    assert not paths.others_can_traverse(inner)
    assert paths.runtime_dir(for_other_user=True, repo=inner) == paths.shared_runtime_dir(inner)
    assert paths.runtime_dir(for_other_user=False, repo=inner) == inner / ".devstack"


def test_shared_runtime_dir_is_per_clone() -> None:
    one = paths.shared_runtime_dir(Path("/root/a/tracesearch"))
    assert one == paths.shared_runtime_dir(Path("/root/a/tracesearch"))
    assert one != paths.shared_runtime_dir(Path("/root/b/tracesearch"))
    assert one.parent == Path("/var/tmp") and one.name.startswith("tracesearch-devstack-")


def test_repo_root_is_the_parent_of_the_package() -> None:
    assert (paths.REPO_ROOT / "devstack" / "__init__.py").is_file()
    assert paths.downloads_dir() == paths.REPO_ROOT / ".devstack" / "downloads"


def make_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        tool = zipfile.ZipInfo("es-1.0/bin/tool")
        tool.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(tool, "#!/bin/sh\n")
        archive.writestr("es-1.0/bin/elasticsearch", "#!/bin/sh\n")  # no Unix mode stored
        archive.writestr("es-1.0/bin/elasticsearch.bat", "@echo off\n")
        archive.writestr("es-1.0/config/elasticsearch.yml", "# stock\n")


def test_unpack_restores_modes_and_is_done_once(tmp_path: Path) -> None:
    archive = tmp_path / "es.zip"
    make_zip(archive)
    home = tmp_path / "runtime" / "elasticsearch-1.0"
    home.parent.mkdir()
    es_dist.unpack(archive, home)
    assert (home / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (home / "bin" / "elasticsearch").stat().st_mode & stat.S_IXOTH
    assert not (home / "bin" / "elasticsearch.bat").stat().st_mode & stat.S_IXUSR
    (home / "config" / "elasticsearch.yml").write_text("# ours\n")
    es_dist.unpack(archive, home)  # marker present: keeps the configured copy
    assert (home / "config" / "elasticsearch.yml").read_text() == "# ours\n"
    assert sorted(p.name for p in home.parent.iterdir()) == ["elasticsearch-1.0"]


def test_unpack_rejects_a_broken_zip(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK not really")
    with pytest.raises(DevstackError, match="not a valid zip"):
        es_dist.unpack(archive, tmp_path / "home")
