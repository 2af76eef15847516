"""The PNG of ``python -m bench.growth``: each request's p95 against the stored spans (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

from bench.growth_report import GROWTH_TARGET, SizeFigures
from bench.querybench import KINDS

DPI = 110


def p95_plot(sizes: Sequence[SizeFigures], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 5))
    x = [s.spans for s in sizes]
    for kind in KINDS:
        points = [s.kind(kind) for s in sizes]
        if all(p is not None for p in points):
            ax.plot(x, [p.p95_ms for p in points if p is not None], marker="o", label=kind)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stored spans")
    ax.set_ylabel("p95, ms")
    ax.set_title(f"query p95 as stored spans grow (target: at most {GROWTH_TARGET:.0f}x from 1M to 10M)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
