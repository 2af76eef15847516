"""One measured pass of ``python -m bench.es_cost``: a variant's templates, the corpus through ``_bulk``,
Elasticsearch's CPU until it is idle again, then its disk after force-merge, before and after the
peer-recovery retention lease has moved past every operation."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench import es, loadgen, procs
from bench.es_variants import SPAN_MAPPINGS_SUFFIX, SPAN_SETTINGS_SUFFIX, Variant, apply_to_templates
from bench.ingest import BULK_HEADERS, BULK_PATH, check_bulk
from bench.log import say

# Elasticsearch counts as idle once merges are done and its CPU over a second is below this many cores.
QUIET_CORES = 0.08
QUIET_CHECKS = 2
QUIET_TIMEOUT_S = 180.0
# The peer-recovery retention lease is renewed by a background sync every 30 s (not settable per index).
LEASE_TIMEOUT_S = 180.0
SETTLE_ID = "es-cost-settle"
RECOVERY_SOURCE = "_recovery_source"


@dataclass(frozen=True)
class FieldUsage:
    total: int
    inverted: int
    stored: int
    doc_values: int
    points: int
    norms: int


@dataclass
class Disk:
    """Bytes after force-merge: right after indexing, and once the lease moved on (``settled``)."""

    immediate: int
    settled: int
    lease_wait_s: float
    merge_cpu_s: float
    fields: dict[str, FieldUsage] = field(default_factory=dict)


@dataclass
class Pass:
    variant: str
    spans: int
    es_cpu_s: float
    post_s: float
    quiet_s: float
    machine_busy_s: float
    loadgen_cpu_s: float
    disk: Disk | None = None

    @property
    def cpu_us_per_span(self) -> float:
        return self.es_cpu_s * 1e6 / self.spans

    @property
    def window_s(self) -> float:
        return self.post_s + self.quiet_s

    @property
    def other_cores(self) -> float:
        """Cores busy with processes other than the node and the load generator during the window."""
        return max(0.0, self.machine_busy_s - self.es_cpu_s - self.loadgen_cpu_s) / self.window_s


def pass_from_json(saved: dict[str, Any]) -> Pass:
    """A ``Pass`` from ``dataclasses.asdict`` output (``--json`` files)."""
    disk = saved.get("disk")
    fields = {name: FieldUsage(**usage) for name, usage in (disk or {}).get("fields", {}).items()}
    return Pass(**{**saved, "disk": Disk(**{**disk, "fields": fields}) if disk else None})


@dataclass(frozen=True)
class Target:
    """The bench's own node and the index every pass writes (deleted after each)."""

    es_url: str
    es_pid: int
    prefix: str
    index: str
    components: Mapping[str, Any]
    index_templates: Mapping[str, Any]


def install(target: Target, change: Variant) -> None:
    """The span templates only, with ``change`` applied (the aggregates' templates are not needed)."""
    for name, body in apply_to_templates(target.components, change).items():
        if name.endswith((SPAN_MAPPINGS_SUFFIX, SPAN_SETTINGS_SUFFIX)):
            es.call(target.es_url, "PUT", f"/_component_template/{name}", body)
    span_template = f"{target.prefix}-span"
    es.call(target.es_url, "PUT", f"/_index_template/{span_template}", target.index_templates[span_template])


def clear(target: Target) -> None:
    es.delete_indices(target.es_url, target.index)


def run_pass(
    target: Target,
    change: Variant,
    bodies: list[bytes],
    spans: int,
    concurrency: int,
    with_disk: bool,
) -> Pass:
    clear(target)
    install(target, change)
    _create_index(target)
    wait_quiet(target, merges=False)
    host, port = es.host_port(target.es_url)
    cpu_before, busy_before = procs.cpu_seconds(target.es_pid), procs.machine_busy_seconds()
    own_before = procs.own_cpu()
    began = time.monotonic()
    result = loadgen.post_all(port, BULK_PATH, BULK_HEADERS, bodies, concurrency, check_bulk, host)
    posted = time.monotonic()
    if result.failures:
        raise RuntimeError(f"{change.name}: {len(result.failures)} failed bulk requests: {result.failures[:3]}")
    # The last refresh a live index makes anyway, then every merge it started, inside the window.
    es.call(target.es_url, "POST", f"/{target.index}/_refresh")
    wait_quiet(target, merges=True)
    done = time.monotonic()
    measured = Pass(
        change.name,
        spans,
        procs.cpu_seconds(target.es_pid) - cpu_before,
        posted - began,
        done - posted,
        procs.machine_busy_seconds() - busy_before,
        procs.own_cpu() - own_before,
    )
    stored = _count(target)
    if stored != spans:
        raise RuntimeError(f"{change.name}: {stored} documents stored of {spans} sent")
    if with_disk:
        measured.disk = disk_after_merges(target, change, bodies[0])
    clear(target)
    return measured


def _create_index(target: Target) -> None:
    """Created before the timing starts, as a daily index exists for most of its day. Its store size is
    read fresh (by default Elasticsearch caches it for 10 s, which would report the size before a merge)."""
    es.call(target.es_url, "PUT", f"/{target.index}", {"settings": {"index.store.stats_refresh_interval": "0ms"}})


def _count(target: Target) -> int:
    return int(es.call(target.es_url, "GET", f"/{target.index}/_count")["count"])


def wait_quiet(target: Target, merges: bool) -> None:
    """Until no merge runs (when asked) and Elasticsearch used under QUIET_CORES for QUIET_CHECKS seconds."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    quiet = 0
    while quiet < QUIET_CHECKS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Elasticsearch did not become idle within {QUIET_TIMEOUT_S:.0f}s")
        before = procs.cpu_seconds(target.es_pid)
        time.sleep(1.0)
        busy = procs.cpu_seconds(target.es_pid) - before > QUIET_CORES
        quiet = 0 if busy or (merges and _merging(target)) else quiet + 1


def _merging(target: Target) -> bool:
    answer = es.call(target.es_url, "GET", f"/{target.index}/_stats/merge?filter_path=_all.primaries.merges.current")
    return int(answer["_all"]["primaries"]["merges"]["current"]) > 0


def disk_after_merges(target: Target, change: Variant, first_body: bytes) -> Disk:
    """Force-merge now (the recovery source of a filtered ``_source`` is still kept), then wait for the
    lease, add one document so that there is something to merge, force-merge again and break it down."""
    cpu_before = procs.cpu_seconds(target.es_pid)
    immediate = _force_merge(target)
    merge_cpu = procs.cpu_seconds(target.es_pid) - cpu_before
    waited = wait_for_lease(target)
    _add_one(target, change, first_body)
    settled = _force_merge(target)
    fields = disk_usage(target)
    say(f"  {change.name}: {immediate:,} B after force-merge, {settled:,} B once the lease moved ({waited:.0f}s)")
    left = fields.get(RECOVERY_SOURCE, FieldUsage(0, 0, 0, 0, 0, 0)).total
    if left > settled // 100:
        say(f"  {change.name}: {left:,} B of {RECOVERY_SOURCE} survived the second merge")
    return Disk(immediate, settled, waited, merge_cpu, fields)


def _force_merge(target: Target) -> int:
    es.call(target.es_url, "POST", f"/{target.index}/_forcemerge?max_num_segments=1", timeout=900)
    # The merged-away files go once no reader holds them: a refresh drops the last one.
    es.call(target.es_url, "POST", f"/{target.index}/_refresh")
    answer = es.call(target.es_url, "GET", f"/{target.index}/_stats/store?filter_path=_all.primaries.store")
    return int(answer["_all"]["primaries"]["store"]["size_in_bytes"])


def lease_passed(shard_stats: Mapping[str, Any]) -> bool:
    """Every retention lease of a shard retains only operations above its highest sequence number."""
    max_seq_no = int(shard_stats["seq_no"]["max_seq_no"])
    leases = shard_stats.get("retention_leases", {}).get("leases", [])
    return bool(leases) and all(int(lease["retaining_seq_no"]) > max_seq_no for lease in leases)


def wait_for_lease(target: Target, clock: Callable[[], float] = time.monotonic) -> float:
    began = clock()
    wanted = "indices.*.shards.*.seq_no,indices.*.shards.*.retention_leases"
    path = f"/{target.index}/_stats?level=shards&filter_path={wanted}"
    while True:
        shards = next(iter(es.call(target.es_url, "GET", path)["indices"].values()))["shards"]
        if all(lease_passed(copy) for copies in shards.values() for copy in copies):
            return clock() - began
        if clock() - began > LEASE_TIMEOUT_S:
            raise RuntimeError(f"the retention lease of {target.index} did not pass max_seq_no in {LEASE_TIMEOUT_S}s")
        time.sleep(2.0)


def _add_one(target: Target, change: Variant, first_body: bytes) -> None:
    document = first_body.split(b"\n", 2)[1]
    path = f"/{target.index}/_doc" if change.auto_id else f"/{target.index}/_create/{SETTLE_ID}"
    es.call(target.es_url, "POST" if change.auto_id else "PUT", path + "?refresh=true", document)


def disk_usage(target: Target) -> dict[str, FieldUsage]:
    answer = es.call(target.es_url, "POST", f"/{target.index}/_disk_usage?run_expensive_tasks=true", timeout=900)
    return parse_disk_usage(answer[target.index])


def parse_disk_usage(index_usage: Mapping[str, Any]) -> dict[str, FieldUsage]:
    return {
        name: FieldUsage(
            int(usage.get("total_in_bytes", 0)),
            int(usage.get("inverted_index", {}).get("total_in_bytes", 0)),
            int(usage.get("stored_fields_in_bytes", 0)),
            int(usage.get("doc_values_in_bytes", 0)),
            int(usage.get("points_in_bytes", 0)),
            int(usage.get("norms_in_bytes", 0)),
        )
        for name, usage in index_usage.get("fields", {}).items()
    }
