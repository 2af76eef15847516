"""PNG plots of the medians, linked from the BENCHMARKS.md section (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

from bench.peers import queries
from bench.peers.measure import Run
from bench.stats import median

DPI = 110


def _medians(runs: Sequence[Run], key: str) -> dict[str, float]:
    mine = [r for r in runs if r.system == key]
    return {
        "rate": median([r.spans_per_s for r in mine]),
        "own": median([r.us_per_span(r.own_cpu_s) for r in mine]),
        "es": median([r.us_per_span(r.es_cpu_s) for r in mine]),
        "bytes": median([r.settled_bytes_per_span for r in mine]),
        "stored": median([r.stored / r.sent for r in mine]),
    }


def _wrapped(label: str) -> str:
    """One word or parenthesis per line: five systems side by side leave each bar little room."""
    for long, short in ((" (", "\n("), ("storage throttle", "storage\nthrottle"), ("Zipkin JSON", "Zipkin\nJSON")):
        label = label.replace(long, short)
    return label


def ingest_plot(systems: Sequence[tuple[str, str]], runs: Sequence[Run], path: Path) -> None:
    present = [(k, label) for k, label in systems if any(r.system == k for r in runs)]
    values = [_medians(runs, k) for k, _ in present]
    labels = [_wrapped(label) for _, label in present]
    x = range(len(present))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    rate, cpu, disk = axes
    rate.bar(x, [v["rate"] for v in values], color="#4c72b0")
    for i, v in enumerate(values):
        if v["stored"] < 1:
            rate.annotate(f"{100 * v['stored']:.0f}% stored", (i, v["rate"]), ha="center", va="bottom", color="#c44e52")
    rate.set_title("spans/s until every span is searchable")
    cpu.bar(x, [v["own"] for v in values], label="the system's own processes", color="#55a868")
    cpu.bar(x, [v["es"] for v in values], bottom=[v["own"] for v in values], label="Elasticsearch", color="#dd8452")
    cpu.set_title("CPU µs per span sent")
    cpu.legend(fontsize=8, loc="lower right")
    disk.bar(x, [v["bytes"] for v in values], color="#8172b3")
    disk.set_title("bytes per span on disk, settled")
    for ax in axes:
        ax.set_xticks(list(x), labels, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def query_plot(systems: Sequence[tuple[str, str]], runs: Sequence[Run], path: Path) -> None:
    present = [(k, label) for k, label in systems if any(r.system == k and r.queries for r in runs)]
    fig, ax = plt.subplots(figsize=(12, 4.6))
    width = 0.8 / max(1, len(present))
    for i, (key, label) in enumerate(present):
        mine = [r for r in runs if r.system == key and r.queries]
        p95 = [median([r.queries[kind].p95_ms for r in mine]) for kind in queries.KINDS]
        ax.bar([k + i * width for k in range(len(queries.KINDS))], p95, width, label=label)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(queries.KINDS))], [queries.LABELS[k] for k in queries.KINDS])
    ax.set_ylabel("p95, ms")
    ax.set_title("query latency p95 through each system's own API (lower is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
