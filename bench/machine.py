"""Where and on what a run happened: the facts the report's header states."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.config import REPO
from bench.es import Node

# What the figures depend on; a change elsewhere (bench/, docs) does not make the commit misleading.
SOURCES = ("tracesearch", "app.py", "gunicorn.conf.py", "pyproject.toml")


@dataclass(frozen=True)
class Machine:
    date: str
    commit: str
    modified_sources: tuple[str, ...]
    nproc: int
    ram_gib: float
    cpu_model: str
    load_1min: float
    python: str
    es_url: str
    es_version: str
    es_heap_mib: int
    es_local: bool


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()


def head_commit() -> str:
    return _git("rev-parse", "--short=12", "HEAD") or "unknown"


def _meminfo_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe(es_url: str, node: Node) -> Machine:
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=_git("rev-parse", "--short=12", "HEAD") or "unknown",
        modified_sources=tuple(line[3:] for line in _git("status", "--porcelain", "--", *SOURCES).splitlines()),
        nproc=os.cpu_count() or 0,
        ram_gib=_meminfo_gib(),
        cpu_model=_cpu_model(),
        load_1min=os.getloadavg()[0],
        python=platform.python_version(),
        es_url=es_url,
        es_version=node.version,
        es_heap_mib=node.heap_max_bytes // (1024 * 1024),
        es_local=node.pid is not None,
    )


@dataclass(frozen=True)
class LocalFacts:
    """The machine without Elasticsearch: for a part that runs alone (benchmark 3)."""

    date: str
    commit: str
    modified_sources: tuple[str, ...]
    nproc: int
    cpu_model: str
    load_1min: float
    python: str


def describe_local(sources: tuple[str, ...] = SOURCES) -> LocalFacts:
    return LocalFacts(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=_git("rev-parse", "--short=12", "HEAD") or "unknown",
        modified_sources=tuple(line[3:] for line in _git("status", "--porcelain", "--", *sources).splitlines()),
        nproc=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        load_1min=os.getloadavg()[0],
        python=platform.python_version(),
    )
