"""The BENCHMARKS.md section of ``python -m bench.es_cost``: medians per variant, disk per field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.es_cost_measure import Disk, Pass
from bench.es_variants import BASELINE, SPAN_MAPPINGS_SUFFIX, SPAN_SETTINGS_SUFFIX, Variant
from tracesearch.settings import Settings
from tracesearch.storage.es.templates import load_templates

HEADING = "## Elasticsearch cost per span, by mapping variant"
# The fields the per-variant breakdown names; the rest is summed as "other".
NAMED_FIELDS = ("_source", "_recovery_source", "tags", "text", "tags_num", "_id", "span.id", "parent.id", "trace.id")
# Issue 14's figures for Jaeger v2 on the same Elasticsearch (the targets).
JAEGER_CPU_US = 69
JAEGER_BYTES = 833


@dataclass(frozen=True)
class Facts:
    command: str
    es_version: str
    heap: str
    spans: int
    digest: str
    ndjson_bytes_per_span: float
    batch_spans: int
    concurrency: int
    repeats: int
    idle_cores: float
    cores: int
    # The checkout measured: its templates are the baseline (empty in runs saved before it was recorded).
    commit: str = ""


def section(facts: Facts, changes: Sequence[Variant], passes: Sequence[Pass]) -> str:
    by_name = {c.name: [p for p in passes if p.variant == c.name] for c in changes}
    base_cpu = _cpu(by_name[BASELINE.name])
    base_disk = _disk(by_name[BASELINE.name])
    lines = [
        HEADING,
        "",
        f"`{facts.command}` — Elasticsearch {facts.es_version} (heap {facts.heap}, 1 shard, 0 replicas), a node "
        f"of the bench's own. {facts.spans:,} `bench.synth` spans (corpus {facts.digest}, "
        f"{facts.ndjson_bytes_per_span:,.0f} B of NDJSON per span) built once with `bulk_body` (the writer's body), "
        f"posted as `_bulk` bodies of {facts.batch_spans} from {facts.concurrency} threads."
        + (f" Baseline: the span templates of commit `{facts.commit}`." if facts.commit else ""),
        "",
        f"CPU is the node's utime + stime from /proc from the first bulk until it is idle again (the last refresh "
        f"and every merge included); median of the passes per variant (up to {facts.repeats}, in alternating order; "
        f"each pass in parentheses). The idle node itself used {facts.idle_cores:.3f} cores, part of every window. "
        f"CPU per span varies less with the other sessions on this {facts.cores}-core machine than wall-clock "
        "rates do, but it is not immune, and the first passes after the node starts cost it up to 2.5x the CPU "
        "per span of later ones (JIT warm-up, most likely; the bench primes with unmeasured passes): compare "
        "variants by their medians, and read the wall-clock seconds only as the size of the windows. "
        "Disk: `_forcemerge?max_num_segments=1` right after indexing, then again once the shard's "
        "peer-recovery retention lease passed `max_seq_no` (one document added so that there is something to "
        "merge), which prunes `_recovery_source`. How much `_recovery_source` the first figure holds depends on "
        "when the lease last synced (every 30 s, not settable per index): all of it when the merge follows a "
        "short indexing burst, as in issue 14's 1,309 B/span; only the last seconds' after a long one.",
        "",
        f"Targets (issue 14, Jaeger v2 on the same node): {JAEGER_CPU_US} µs/span of Elasticsearch CPU, "
        f"{JAEGER_BYTES} B/span on disk.",
        "",
        installed(load_templates(Settings())[0]),
        "",
        "| variant | ES CPU µs/span | vs baseline | B/span after force-merge | B/span, lease passed | vs baseline "
        "| window s (wall) | other processes, cores | search features it costs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for change in changes:
        runs = by_name[change.name]
        cpu = _cpu(runs)
        disk = _disk(runs)
        lines.append(
            f"| {change.name} | {cpu:.1f} ({', '.join(f'{p.cpu_us_per_span:.0f}' for p in runs)}) "
            f"| {_ratio(cpu, base_cpu)} | {_per_span(disk.immediate, facts.spans) if disk else '-'} "
            f"| {_per_span(disk.settled, facts.spans) if disk else '-'} "
            f"| {_ratio(disk.settled, base_disk.settled) if disk and base_disk else '-'} "
            f"| {stats.median([p.window_s for p in runs]):.0f} | {stats.median([p.other_cores for p in runs]):.2f} "
            f"| {change.costs or '-'} |"
        )
    lines += ["", *_field_table(changes, by_name, facts.spans)]
    if base_disk is not None:
        lines += ["", *_baseline_fields(base_disk, facts.spans)]
    lines += ["", "What each variant changes:", ""]
    lines += [f"- `{c.name}`: {c.what}" for c in changes]
    return "\n".join(lines) + "\n"


def installed(components: Mapping[str, Any]) -> str:
    """What the service installs for new daily span indices now (this checkout, default settings): runs
    made before a change of the templates measured the older ones as their baseline."""
    index = _one(components, SPAN_SETTINGS_SUFFIX)["template"]["settings"]["index"]
    excludes = _one(components, SPAN_MAPPINGS_SUFFIX)["template"]["mappings"].get("_source", {}).get("excludes")
    codec = index.get("codec", "default (LZ4)")
    refresh = f"`{index['refresh_interval']}`" if "refresh_interval" in index else "unset (search-idle applies)"
    source = f"excludes {', '.join(f'`{e}`' for e in excludes)}" if excludes else "every field (no excludes)"
    sort = f"`{index['sort']['field']}`" if "sort" in index else "none"
    return (
        f'Installed now (the templates of this checkout, default settings; see docs/storage.md, "Index '
        f'format"): `index.codec` {codec}, `_source` {source}, `refresh_interval` {refresh}, `index.sort` {sort}.'
    )


def _one(components: Mapping[str, Any], suffix: str) -> Any:
    return next(body for name, body in components.items() if name.endswith(suffix))


def _cpu(runs: Sequence[Pass]) -> float:
    return stats.median([p.cpu_us_per_span for p in runs])


def _disk(runs: Sequence[Pass]) -> Disk | None:
    return next((p.disk for p in runs if p.disk is not None), None)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _per_span(total: int, spans: int) -> str:
    return f"{total / spans:,.0f}"


def _field_table(changes: Sequence[Variant], by_name: dict[str, list[Pass]], spans: int) -> list[str]:
    lines = [
        "Bytes per span by field once the lease passed (`_disk_usage?run_expensive_tasks=true`):",
        "",
        "| variant | " + " | ".join(f"`{f}`" for f in NAMED_FIELDS) + " | other | total |",
        "|---|" + "---|" * (len(NAMED_FIELDS) + 2),
    ]
    for change in changes:
        disk = _disk(by_name[change.name])
        if disk is None:
            continue
        named = [disk.fields[f].total if f in disk.fields else 0 for f in NAMED_FIELDS]
        cells = [f"{b / spans:.0f}" for b in named]
        lines.append(
            f"| {change.name} | " + " | ".join(cells) + f" | {(disk.settled - sum(named)) / spans:.0f} "
            f"| {disk.settled / spans:.0f} |"
        )
    return lines


def _baseline_fields(disk: Disk, spans: int) -> list[str]:
    lines = [
        "The baseline's fields in detail (B/span; fields under 0.5 B/span left out):",
        "",
        "| field | total | inverted index | stored | doc values | points | norms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, usage in sorted(disk.fields.items(), key=lambda item: -item[1].total):
        if usage.total / spans < 0.5:
            continue
        cells = (usage.total, usage.inverted, usage.stored, usage.doc_values, usage.points, usage.norms)
        lines.append(f"| `{name}` | " + " | ".join(f"{c / spans:.1f}" for c in cells) + " |")
    return lines
