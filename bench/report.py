"""BENCHMARKS.md: every figure from the one run that writes it."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import sampling, stats
from bench.config import Config
from bench.hotpath import HotPath
from bench.ingest import OTHER_LIMIT, PRIME_BODIES, IngestResult, Phase
from bench.instrument import QUEUE_SIZE, VARIANTS, InstrumentResult
from bench.instrument import TARGET as INSTRUMENT_TARGET
from bench.kafkamode import POLL_S, SAMPLE_EVERY, KafkaPhase, KafkaResult, LatencyResult
from bench.machine import Machine
from bench.querybench import LIMIT, Kind, QueryResult
from bench.sampling import SamplingResult
from bench.stats import median

INGEST_TARGET = 0.70
KAFKA_TARGET = 0.90
LATENCY_P95_TARGET_S = 5.0
BY_ID_P95_TARGET_MS = 50.0
SEARCH_P95_TARGET_MS = 300.0
# Issue 4 targets (p95, ms) of the Grafana-facing requests over the same data set.
TEMPO_TARGETS_MS = {
    "service_map_1h": 200.0,
    "service_map_24h": 200.0,
    "latency_panel_24h": 300.0,
    "traceql_attribute": 300.0,
    "traceql_structural": 1000.0,
    "tag_values": 100.0,
}
TEMPO_LABELS = {
    "service_map_1h": "Service map (`GET /api/dependencies`), 1 h",
    "service_map_24h": "Service map (`GET /api/dependencies`), 24 h",
    "latency_panel_24h": "Latency panel: TraceQL `quantile_over_time(duration, .5, .95, .99)`, one service, "
    "24 h, 1-minute steps",
    "traceql_attribute": f"TraceQL search, attribute matchers, 1 h, limit {LIMIT}",
    "traceql_structural": f"TraceQL search with a structural operator (`>>`, `>`, `~`), 1 h, limit {LIMIT}",
    "tag_values": "Tag value autocomplete (`/api/v2/search/tag/{tag}/values`)",
}
JAEGER_1740 = "https://github.com/jaegertracing/jaeger/pull/1740"
JAEGER_1475 = "https://github.com/jaegertracing/jaeger/pull/1475"


WRITTEN_BY = (
    "Written by `make bench` (`python -m bench`); every figure below comes from the one run described here, "
    "except that section 3 (the client side, which needs no Elasticsearch) states its own run: "
    "`python -m bench --only instrument` updates it and its summary rows alone."
)
WRITTEN_BY_BEFORE = (
    "Written by `make bench` (`python -m bench`); every figure below comes from the one run described here."
)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _median_us(phases: list[Phase], which: str) -> float | None:
    values = [p.us_per_span(getattr(p, which)) for p in phases]
    present = [v for v in values if v is not None]
    return median(present) if present else None


def header(config: Config, machine: Machine, load_end: float) -> list[str]:
    changed = machine.modified_sources
    sources = (
        f"working tree differs in: {', '.join(f'`{name}`' for name in changed)}" if changed else "sources as committed"
    )
    return [
        "# Benchmarks",
        "",
        WRITTEN_BY,
        "",
        "| | |",
        "| --- | --- |",
        f"| Command | `{config.command}` |",
        f"| Date | {machine.date} |",
        f"| Commit | `{machine.commit}` ({sources}) |",
        f"| Machine | {machine.nproc} CPUs ({machine.cpu_model}), {machine.ram_gib:.1f} GiB RAM, "
        f"load average {machine.load_1min:.2f} at start, {load_end:.2f} at the end |",
        f"| Elasticsearch | {machine.es_version}, single node at {machine.es_url} "
        f"({'on the same machine' if machine.es_local else 'elsewhere: its CPU is not counted'}), "
        f"heap {machine.es_heap_mib} MiB, 1 shard, 0 replicas, refresh interval Elasticsearch's default: 1s, "
        "with search-idle (the service's defaults) |",
        f"| Service | gunicorn gthread, {config.workers} workers x {config.threads} threads, direct sink "
        "(each request waits for Elasticsearch)"
        + (
            ""
            if config.skip_kafka or config.skip_ingest
            else "; in section 1b Kafka sink (each request waits for the broker's acks) and "
            "`python -m tracesearch ingester` processes"
        )
        + " |",
        f"| Python | {machine.python} |",
        "",
        "## How to read",
        "",
        f"- Elasticsearch, the service and the load generator share the machine's {machine.nproc} cores. Ingest is "
        "CPU-bound here, so the raw `_bulk` ceiling is what Elasticsearch indexes when nobody else needs the CPU, "
        "and tracesearch's figure is lower by the CPU the service spends itself. *CPU µs per span* (utime + stime "
        "from `/proc`, over the measured phase, divided by its spans) is the figure that carries over to other "
        "machines; spans/s do not.",
        "- Ingest: medians of the repeats; warm-up batches are posted before each measured phase and not counted. "
        "Every answer was checked (OTLP: 200 with no `partialSuccess`; `_bulk`: `errors:false`), and after a "
        "refresh each index held exactly the spans sent.",
        "- Queries: one client sends one request at a time on a keep-alive connection and reads the whole answer; "
        "p50/p95 are over the number of requests shown, after a warm-up. Searches use random one-hour windows, "
        "services, tags and durations, so they are not served from one cached answer.",
        "",
    ]


def summary(config: Config, ingest: IngestResult | None, query: QueryResult | None) -> list[str]:
    rows = ["## Summary", "", "| Figure | Result | Target |", "| --- | --- | --- |"]
    if ingest is not None:
        ratio_ok = ingest.ratio >= INGEST_TARGET
        rows += [
            f"| Ingest through tracesearch (OTLP protobuf, {config.batch_spans}-span batches, "
            f"{ingest.concurrency} connections) | {ingest.ingest_median:,.0f} spans/s | |",
            f"| Raw `_bulk` ceiling, same documents, same concurrency | {ingest.ceiling_median:,.0f} spans/s | |",
            f"| tracesearch / ceiling | {ingest.ratio:.0%} | ≥ {INGEST_TARGET:.0%}: {_verdict(ratio_ok)} |",
            f"| Service CPU per span (gunicorn master + workers) | {_us(_median_us(ingest.ingest, 'service_cpu_s'))} "
            "µs | |",
        ]
        if ingest.kafka is not None:
            rows += kafka_summary(ingest, ingest.kafka)
    if query is not None:
        by_id, search = query.kind("trace_by_id"), query.kind("search")
        by_id_ok = by_id.p95_ms <= BY_ID_P95_TARGET_MS
        rows += [
            f"| Trace by id, {query.data.big_trace_spans} spans, p95 (p50) | {by_id.p95_ms:.1f} ms "
            f"({by_id.p50_ms:.1f} ms) | ≤ {BY_ID_P95_TARGET_MS:.0f} ms: {_verdict(by_id_ok)} |",
            f"| Search service + tag + minDuration, 1 h, limit {LIMIT}, p95 (p50) | {search.p95_ms:.1f} ms "
            f"({search.p50_ms:.1f} ms) | ≤ {SEARCH_P95_TARGET_MS:.0f} ms: "
            f"{_verdict(search.p95_ms <= SEARCH_P95_TARGET_MS)} |",
        ]
        for name, target in TEMPO_TARGETS_MS.items():
            if any(k.name == name for k in query.kinds):
                kind = query.kind(name)
                rows.append(
                    f"| {TEMPO_LABELS[name]}, p95 (p50) | {kind.p95_ms:.1f} ms ({kind.p50_ms:.1f} ms) "
                    f"| ≤ {target:.0f} ms: {_verdict(kind.p95_ms <= target)} |"
                )
    return [*rows, ""]


def _ingesters(count: int) -> str:
    return f"{count} ingester" + ("" if count == 1 else "s")


def _failure_rows(kafka: KafkaResult) -> list[str]:
    return [
        f"| Kafka mode, {'latency phase' if what == 'latency' else _ingesters(int(what))}: **failed** "
        f"| {why.replace('|', '/')} | |"
        for what, why in kafka.failures
    ]


def kafka_summary(ingest: IngestResult, kafka: KafkaResult) -> list[str]:
    rows = _failure_rows(kafka)
    for phase in kafka.phases:
        ratio = phase.spans_per_s / ingest.ingest_median
        rows += [
            f"| Ingest through Kafka, {_ingesters(phase.ingesters)} (acknowledged and indexed, same bodies) "
            f"| {phase.spans_per_s:,.0f} spans/s | |",
            f"| Kafka ({_ingesters(phase.ingesters)}) / direct | {ratio:.0%} "
            f"| ≥ {KAFKA_TARGET:.0%}: {_verdict(ratio >= KAFKA_TARGET)} |",
            f"| Service + ingesters CPU per span, Kafka, {_ingesters(phase.ingesters)} "
            f"| {_us(phase.us(phase.cpu.service + phase.cpu.ingesters))} µs "
            f"({_us(phase.us(phase.cpu.service))} + {_us(phase.us(phase.cpu.ingesters))}) | |",
        ]
    if kafka.latency is not None:
        lat = kafka.latency
        rows.append(
            f"| Kafka mode, receive → searchable at {lat.achieved_spans_per_s:,.0f} spans/s (50% of peak), "
            f"p95 (p50) | {lat.p95_s:.2f} s ({lat.p50_s:.2f} s) "
            f"| p95 ≤ {LATENCY_P95_TARGET_S:.0f} s: {_verdict(lat.p95_s <= LATENCY_P95_TARGET_S)} |"
        )
    return rows


def kafka_section(config: Config, machine: Machine, ingest: IngestResult, kafka: KafkaResult) -> list[str]:
    direct = ingest.ingest_median
    lines = [
        "## 1b. Ingest through Kafka: service → broker → ingester processes → Elasticsearch",
        "",
        f"The same {ingest.work.spans:,} pre-encoded OTLP bodies (+{ingest.work.warmup_spans:,} warm-up spans "
        f"first), posted on {ingest.concurrency} keep-alive connections to the service in Kafka mode "
        f"(`TRACESEARCH_PIPELINE=kafka`, same {config.workers} workers x {config.threads} threads), with 1 or 2 "
        "`python -m tracesearch ingester` processes consuming the topic "
        f"({kafka.partitions} partitions) as one group and writing to Elasticsearch (their default batching). "
        "Each phase has a topic, dead-letter topic, consumer group and index prefix of its own, starts after "
        "the group's assignment settled and the warm-up spans were indexed, and runs once, after the direct "
        "repeats above. **spans/s** counts a span once the service acknowledged it *and* the index holds it: "
        "the phase lasts from the first post until a refresh after which `_count` finds every span (once the "
        "last post was answered, the ingesters' `tracesearch_spans_indexed_total` is read every 0.1 s, and "
        "when it reaches the spans sent, refresh + `_count` every 0.1 s decide, so Elasticsearch is not made to "
        "refresh while it indexes). *Acknowledged* is the rate at which the service "
        "answered 200 (spans in the broker, not yet stored). The Kafka broker runs on the same machine; "
        "its CPU is shown apart.",
        "",
        "| Phase | spans/s (acked + indexed) | / direct median | / `_bulk` ceiling | acknowledged spans/s "
        "| service CPU µs/span | ingesters CPU µs/span | service + ingesters | ES CPU µs/span "
        "| Kafka broker CPU µs/span | load generator | other | machine CPU busy | batch ack latency p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in kafka.phases:
        lines.append(_kafka_row(phase, direct, ingest.ceiling_median, machine.nproc))
    for what, why in kafka.failures:
        if what != "latency":
            lines.append(f"| Kafka, {_ingesters(int(what))} | **failed**: {why.replace('|', '/')} |" + " |" * 12)
    lines += [
        f"| direct (median of section 1) | {direct:,.0f} | 100% | {ingest.ratio:.0%} | | "
        f"{_us(_median_us(ingest.ingest, 'service_cpu_s'))} | | {_us(_median_us(ingest.ingest, 'service_cpu_s'))} "
        f"| {_us(_median_us(ingest.ingest, 'es_cpu_s'))} | | | | | |",
        "",
        f"Target: Kafka / direct ≥ {KAFKA_TARGET:.0%}."
        + (
            " Names used: "
            + "; ".join(f"{_ingesters(p.ingesters)}: {p.names}" for p in kafka.phases)
            + " (all deleted afterwards)."
            if kafka.phases
            else " Topics, groups and indices of the failed phases were deleted afterwards."
        ),
        "",
    ]
    if kafka.latency is not None:
        lines += latency_section(kafka.latency, machine.nproc)
    elif any(what == "latency" for what, _ in kafka.failures):
        lines += [
            "### Receive → searchable, Kafka mode, at 50% of the peak",
            "",
            "Not measured: no Kafka throughput phase completed, so this run has no peak to take half of.",
            "",
        ]
    return lines


def _kafka_row(phase: KafkaPhase, direct: float, ceiling: float, cores: int) -> str:
    cpu = phase.cpu
    return (
        f"| Kafka, {_ingesters(phase.ingesters)} | {phase.spans_per_s:,.0f} | {phase.spans_per_s / direct:.0%} "
        f"| {phase.spans_per_s / ceiling:.0%} | {phase.acked_per_s:,.0f} | {_us(phase.us(cpu.service))} "
        f"| {_us(phase.us(cpu.ingesters))} | **{_us(phase.us(cpu.service + cpu.ingesters))}** "
        f"| {_us(phase.us(cpu.es))} | {_us(phase.us(cpu.kafka))} | {_us(phase.us(cpu.loadgen))} "
        f"| {_us(phase.us(cpu.other))} | {phase.busy_share(cores):.0%} | {phase.batch_latency_p50_s * 1000:.0f} |"
    )


def latency_section(lat: LatencyResult, cores: int) -> list[str]:
    cpu = lat.cpu
    busy = cpu.machine_busy / (lat.seconds * cores)
    return [
        "### Receive → searchable, Kafka mode, at 50% of the peak",
        "",
        f"Batches of {lat.batch_spans} spans (whole traces of 4-16 spans, so the batch's trace ids match exactly "
        f"its spans) posted on a fixed schedule at {lat.target_spans_per_s:,.0f} spans/s, half the best "
        f"acknowledged-and-indexed rate above, with {_ingesters(lat.ingesters)}, for {lat.seconds:.0f} s, on a "
        f"fresh topic, group and prefix ({lat.names}). For every {SAMPLE_EVERY}th batch the clock starts when its "
        f"POST is sent; every {POLL_S * 1000:.0f} ms one `_msearch` asks, for each batch still waited for, a "
        "`size: 0` search with a terms query on its trace ids and an exact total, and the clock stops at the "
        "answer that counts every span of the batch. No refresh is forced: a span is searchable after the "
        "index's own 1 s refresh, as in production. At the end a refresh and `_count` found every span sent.",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| Rate posted (target) | {lat.achieved_spans_per_s:,.0f} spans/s ({lat.target_spans_per_s:,.0f}); "
        f"{lat.batches:,} batches, {lat.spans:,} spans; the latest post left {lat.behind_s * 1000:.0f} ms "
        "after its schedule |",
        f"| Batches followed | {len(lat.samples_s)} |",
        f"| Receive → searchable p50 | {lat.p50_s:.2f} s |",
        f"| Receive → searchable p95 | **{lat.p95_s:.2f} s** (target ≤ {LATENCY_P95_TARGET_S:.0f} s: "
        f"{_verdict(lat.p95_s <= LATENCY_P95_TARGET_S)}) |",
        f"| Receive → searchable max | {lat.max_s:.2f} s |",
        f"| POST answered (broker ack) p50 | {lat.ack_p50_s * 1000:.1f} ms |",
        f"| Machine CPU busy while posting | {busy:.0%} |",
        "",
    ]


def ingest_section(config: Config, machine: Machine, result: IngestResult) -> list[str]:
    work = result.work
    lines = [
        "## 1. Ingest: OTLP through the service, and the raw `_bulk` ceiling",
        "",
        f"Workload: {work.spans:,} spans per measured phase (+{work.warmup_spans:,} warm-up), traces of 5-40 spans "
        "with parent links from 4 services, about 15 attributes per span (HTTP or database conventions, a "
        "100-character note, ints, doubles, booleans, a string array), an event on 1 span in 10, errors on 1 in 25. "
        f"OTLP bodies of {config.batch_spans} spans average {work.otlp_kib:.0f} KiB; the ceiling posts "
        f"the documents tracesearch itself builds from them (its decoder and `bulk_body`, the writer's body), "
        f"{work.bulk_kib:.0f} KiB of NDJSON per {config.batch_spans} spans, to `_bulk?filter_path=errors` "
        "in a prefix with the same index templates. Both use "
        f"{result.concurrency} keep-alive connections.",
        "",
        "| Phase | spans/s | service CPU µs/span | ES CPU µs/span | load generator CPU µs/span "
        "| other processes' CPU µs/span | machine CPU busy | batch latency p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for index, (ours, raw) in enumerate(zip(result.ingest, result.ceiling, strict=True), start=1):
        lines += [
            _phase_row(f"tracesearch #{index}", ours, machine.nproc),
            _phase_row(f"`_bulk` #{index}", raw, machine.nproc),
        ]
    for index, (ours, raw) in enumerate(result.discarded, start=1):
        lines += [
            _phase_row(f"discarded #{index} tracesearch", ours, machine.nproc),
            _phase_row(f"discarded #{index} `_bulk`", raw, machine.nproc),
        ]
    service_us = _us(_median_us(result.ingest, "service_cpu_s"))
    lines += [
        f"| **median tracesearch** | **{result.ingest_median:,.0f}** | **{service_us}** "
        f"| {_us(_median_us(result.ingest, 'es_cpu_s'))} | | | | |",
        f"| **median `_bulk`** | **{result.ceiling_median:,.0f}** | | {_us(_median_us(result.ceiling, 'es_cpu_s'))} "
        "| | | | |",
        "",
        f"tracesearch / ceiling = **{result.ratio:.0%}** (target ≥ {INGEST_TARGET:.0%}). On a CPU-bound machine the "
        "ratio is about (ES CPU per span of the ceiling) / (ES + service CPU per span of tracesearch). *Other "
        "processes* is the machine's busy time minus the three accounted for: near zero means nothing else ran; a "
        f"repeat where it exceeded {OTHER_LIMIT:.0%} of the machine was run again and is listed as discarded, "
        "not counted. Before repeat 1, Elasticsearch indexed (and dropped) "
        f"{PRIME_BODIES} bodies, so its JIT compilation is not part of any figure.",
        "",
    ]
    if result.hot is not None:
        lines += hot_section(result.hot, _median_us(result.ingest, "service_cpu_s"))
    return lines


def _phase_row(label: str, phase: Phase, cores: int) -> str:
    return (
        f"| {label} | {phase.spans_per_s:,.0f} | {_us(phase.us_per_span(phase.service_cpu_s))} "
        f"| {_us(phase.us_per_span(phase.es_cpu_s))} | {_us(phase.us_per_span(phase.loadgen_cpu_s))} "
        f"| {_us(phase.us_per_span(phase.other_cpu_s))} | {phase.busy_share(cores):.0%} "
        f"| {phase.batch_latency_p50_s * 1000:.0f} |"
    )


def hot_section(hot: HotPath, service_us: float | None) -> list[str]:
    rest = "" if service_us is None else f"{service_us - hot.total_us:,.0f}"
    return [
        "### Where the service's CPU goes",
        "",
        f"The service's per-span steps timed in the bench process on {hot.spans:,} of the same spans (one thread, "
        "no I/O, median of 3 rounds):",
        "",
        "| Step | µs per span |",
        "| --- | --- |",
        f"| decode OTLP protobuf + validate (`decode_export_request`) | {hot.decode_us:.1f} |",
        f"| build the document (`to_document`) | {hot.to_document_us:.1f} |",
        f"| serialise action + document (`orjson.dumps`) | {hot.dumps_us:.1f} |",
        f"| the pure-Python bulk body (`document.bulk_body`: documents, action lines, index names, join) "
        f"| {hot.bulk_body_us:.1f} |",
        f"| the compiled core's bulk body (`tracesearch_native`, what the writer uses where it is built) "
        f"| {f'{hot.native_body_us:.1f}' if hot.native_body_us else 'not used'} |",
        f"| the service-graph observer (pairing + per-minute aggregates) | {hot.observe_us:.1f} |",
        f"| **decode + bulk body + observer** | **{hot.total_us:.1f}** |",
        f"| measured service CPU per span minus the above: the service-graph flush thread, freeing the batch, "
        f"the Elasticsearch client, HTTP, Flask, gunicorn, threads, the kernel | {rest} |",
        "",
        "The next subsection breaks the whole of it down by function.",
        "",
    ]


HELD = {
    "service_map_1h": "{traces:.0f} edges",
    "service_map_24h": "{traces:.0f} edges",
    "latency_panel_24h": "{traces:.0f} series, {spans:.0f} points",
    "tag_values": "{traces:.0f} values",
    "traceql_attribute": "{traces:.1f} traces, {spans:.0f} matched spans",
    "traceql_structural": "{traces:.1f} traces, {spans:.0f} matched spans",
}


def _held(kind: Kind, services: int) -> str:
    if kind.name == "services":
        return f"{services} services"
    if kind.name in HELD:
        held = HELD[kind.name].format(traces=kind.mean_traces, spans=kind.mean_spans)
        return held + (f"; {kind.empty_share:.0%} empty" if kind.name.startswith("traceql") else "")
    empty = f"; {kind.empty_share:.0%} empty" if kind.name in ("search", "text_search") else ""
    return f"{kind.mean_traces:.1f} traces, {kind.mean_spans:.0f} spans{empty}"


def query_section(result: QueryResult) -> list[str]:
    data = result.data
    start = datetime.fromtimestamp(data.start_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(data.end_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")
    how = (
        f"loaded by this run through `_bulk` in {data.load_seconds:.0f} s"
        if data.loaded_now
        else "loaded by an earlier run and reused (checked: same generator version, same span count)"
    )
    lines = [
        "## 2. Query latency over a stored data set",
        "",
        f"Data set: {data.spans:,} spans from {len(data.services)} services ({', '.join(data.services)}) spread over "
        f"{start} to {end} UTC, traces of 5-40 spans plus {len(data.big_trace_ids)} traces of exactly "
        f"{data.big_trace_spans} spans; {how}.",
        "",
        "| Request | n | p50 ms | p95 ms | max ms | answers held (mean) | other processes' CPU | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    targets = {"trace_by_id": BY_ID_P95_TARGET_MS, "search": SEARCH_P95_TARGET_MS, **TEMPO_TARGETS_MS}
    labels = {
        "trace_by_id": f"`GET /api/traces/{{id}}`, a {data.big_trace_spans}-span trace, no time range (7-day lookback)",
        "search": f"`GET /api/traces` service + one tag + minDuration, 1 h window, limit {LIMIT}",
        "services": "`GET /api/services` (7-day lookback)",
        "text_search": f"`GET /api/traces` service + `_text` word, 1 h window, limit {LIMIT}",
        **TEMPO_LABELS,
    }
    for kind in result.kinds:
        held = _held(kind, len(data.services))
        target = targets.get(kind.name)
        verdict = f"p95 ≤ {target:.0f} ms: {_verdict(kind.p95_ms <= target)}" if target else "context"
        lines.append(
            f"| {labels[kind.name]} | {len(kind.seconds)} | {kind.p50_ms:.1f} | {kind.p95_ms:.1f} | {kind.max_ms:.1f} "
            f"| {held} | {kind.other_cores:.2f} cores | {verdict} |"
        )
    lines += [
        "",
        f"Example search: `{result.kind('search').example}`",
        "",
        "The service map and the span metrics need no batch job: they are per-minute aggregates the service-graph "
        "stage writes as spans are stored (for this data set the same stage ran over the spans while they were "
        "loaded). The latency panel is answered by Elasticsearch percentile aggregations over the spans; TraceQL "
        "searches push a superset filter into Elasticsearch and evaluate the candidate traces exactly.",
        "",
        "Anchors, from other setups and hardware (orders of magnitude, not a like-for-like comparison): Jaeger on "
        f"Elasticsearch took a median of 1.3 s for a one-hour search with `limit=10000` in the measurements of "
        f"[jaeger#1740]({JAEGER_1740}), and its trace-id aggregation (terms ordered by a `max(startTime)` "
        f"sub-aggregation) took 38 s over 331,761 matching spans in [jaeger#1475]({JAEGER_1475}). tracesearch finds "
        "trace ids with field collapsing on `trace.id` instead.",
        "",
    ]
    return lines


def render(
    config: Config,
    machine: Machine,
    load_end: float,
    ingest: IngestResult | None,
    query: QueryResult | None,
    client: InstrumentResult | None = None,
    sampled: SamplingResult | None = None,
) -> str:
    lines = header(config, machine, load_end) + summary(config, ingest, query)
    if client is not None:
        # The summary table's last rows, before its closing blank line.
        lines[-1:-1] = instrument_summary(client)
    if sampled is not None:
        lines[-1:-1] = sampling.summary_rows(sampled)
    if ingest is not None:
        lines += ingest_section(config, machine, ingest)
        if ingest.kafka is not None:
            lines += kafka_section(config, machine, ingest, ingest.kafka)
    if query is not None:
        lines += query_section(query)
    if sampled is not None:
        lines += sampling.section(sampled)
    if client is not None:
        lines += instrument_section(client)
    return "\n".join(lines).rstrip() + "\n"


# --- section 3: the client side ----------------------------------------------------------------

INSTRUMENT_HEADING = "## 3. Client side: `tracesearch-instrument` against the bare OpenTelemetry SDK"
INSTRUMENT_ROW = "| `tracesearch-instrument`"
FORMATTER_CASES = {
    "outside": "outside any span (record stamped `otelTraceID=0` by the logging instrumentation)",
    "span": "in a sampled span (record stamped with its ids by the logging instrumentation)",
    "span_unstamped": "in a sampled span, record not stamped (logging instrumentation off: EcsFormatter reads the "
    "current span)",
}


def _label(name: str) -> str:
    return next(v.label for v in VARIANTS if v.name == name)


def instrument_summary(result: InstrumentResult) -> list[str]:
    rows = []
    for mode in ("sampled", "unsampled"):
        ours, theirs = f"setup_{mode}", f"bare_{mode}"
        ratio = result.paired_ratio(ours, theirs)
        rows.append(
            f"{INSTRUMENT_ROW}: CPU per Flask request, `setup()` / bare SDK, {mode} (median of paired rounds) "
            f"| {ratio:.3f} ({result.cpu_median(ours):.0f} vs {result.cpu_median(theirs):.0f} µs) "
            f"| ≤ {INSTRUMENT_TARGET:.2f}: {_verdict(ratio <= INSTRUMENT_TARGET)} |"
        )
    if result.formatter is not None:
        fmt = result.formatter
        rows.append(
            f"{INSTRUMENT_ROW}: ECS log line in a span, `EcsFormatter` / ecs-logging `StdlibFormatter` "
            f"| {fmt.ratio('span'):.2f} ({fmt.median('span', 'tracesearch'):.1f} vs {fmt.median('span', 'ecs'):.1f} "
            "µs per record) | context |"
        )
    return rows


def _instrument_facts(result: InstrumentResult) -> list[str]:
    changed = result.modified_sources
    sources = f"working tree differs in: {', '.join(f'`{n}`' for n in changed)}" if changed else "as committed"
    packages = ", ".join(f"{name} {ver}" for name, ver in result.packages.items())
    return [
        "| | |",
        "| --- | --- |",
        f"| Command | `{result.command}` |",
        f"| Date | {result.date} |",
        f"| Commit | `{result.commit}` (`instrument/` {sources}) |",
        f"| Machine | {result.cpus} CPUs ({result.cpu_model}), load average {result.load_start:.2f} at start, "
        f"{result.load_end:.2f} at the end (other sessions share it: only CPU per request is quoted) |",
        f"| Python | {result.python}; {packages} |",
    ]


def _variant_row(result: InstrumentResult, name: str) -> str:
    low, high = result.spread(name)
    runs = result.of(name)
    overhead = "" if name == "plain" else f"{result.paired_overhead(name):.0f}"
    exported = (
        f"{runs[0].spans:,} spans in {stats.median([r.posts for r in runs]):.0f} posts, "
        f"{stats.median([r.export_bytes for r in runs]) / max(runs[0].spans, 1):.0f} B/span"
        if runs[0].spans
        else "none"
    )
    return (
        f"| {_label(name)} | **{result.cpu_median(name):.0f}** | {low:.0f}-{high:.0f} | {overhead} "
        f"| {result.wall_median(name):.0f} | {exported} |"
    )


def instrument_section(result: InstrumentResult) -> list[str]:
    per = result.requests
    lines = [
        INSTRUMENT_HEADING,
        "",
        *_instrument_facts(result),
        "",
        "Method. Every variant is a process of its own (the SDK allows one tracer provider per process), "
        f"{len(VARIANTS)} per round, {result.rounds} rounds, the order rotating by round (the paired method of "
        "[docs/performance.md](docs/performance.md)). A process makes a Flask app with one view, "
        "`GET /orders/<id>`: sums 16 integers, logs one line and answers a small JSON document. Logging is the "
        "same in every variant: one root handler, plain text format, to `/dev/null` (the formatters' own cost is "
        "measured below). Requests are WSGI calls in the same process (no socket between client and app), each "
        "with a W3C `traceparent` from an upstream service. After "
        f"{result.warmup} warm-up requests and a flush, {per:,} requests are measured: CPU time of the process "
        "(every thread, so the batch processor's export thread too) over the requests and a final `force_flush`, "
        "divided by the requests. *Sampled*: `OTEL_TRACES_SAMPLER=always_on`, the upstream header sampled; "
        "*unsampled*: `parentbased_always_on` (the SDK default) and the upstream header's flags `00`, so spans are "
        "created but not recorded or exported.",
        "",
        "- **(b) bare SDK**, as the OpenTelemetry documentation wires it: `TracerProvider` + "
        "`BatchSpanProcessor(OTLPSpanExporter(endpoint))` + W3C tracecontext and baggage propagators + "
        "`FlaskInstrumentor.instrument_app(app)` + `RequestsInstrumentor().instrument()`.",
        "- **(c) `tracesearch.instrument.setup(service_name=..., endpoint=...)`** (`logs` not set, so the log "
        "handler is the same as in (a) and (b)): the same SDK classes through the SDK's `_initialize_components`, "
        "its propagator (extracts Jaeger, B3 and W3C, injects W3C), Flask, requests and logging instrumentation.",
        "- Exporter: in (b) and (c) the SDK's OTLP/HTTP protobuf exporter with default batch settings but a queue "
        f"of {QUEUE_SIZE:,} spans (`OTEL_BSP_MAX_QUEUE_SIZE`: the driver makes requests faster than the default "
        "2,048-span queue is drained while an export waits for its answer, and a dropped span is work not done), "
        "sending to a "
        "sink in the bench process (an HTTP/1.1 keep-alive server that decodes each export, counts its spans and "
        "answers an empty 200). A stub exporter without network was not an option: `setup()` builds its exporter "
        "itself from `endpoint`, and replacing it would measure something users do not run. The sink checked "
        "that every process exported exactly its sampled requests' spans (warm-up included) and the unsampled "
        "ones none; its own CPU is not counted.",
        "",
        "| Variant | CPU µs/request, median | min-max over rounds | instrumentation CPU µs/request (- (a) in the "
        "same round, median) | wall µs/request, median | exported per process |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_variant_row(result, v.name) for v in VARIANTS[:5]]
    lines += [
        "",
        "| Comparison | ratio of medians | median of the rounds' ratios | instrumentation CPU only, (c - a) / "
        "(b - a), median of rounds | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode in ("sampled", "unsampled"):
        ours, theirs = f"setup_{mode}", f"bare_{mode}"
        paired = result.paired_ratio(ours, theirs)
        lines.append(
            f"| (c) / (b), {mode} | {result.cpu_median(ours) / result.cpu_median(theirs):.3f} | **{paired:.3f}** "
            f"| {result.paired_overhead_ratio(ours, theirs):.2f} | ≤ {INSTRUMENT_TARGET:.2f}: "
            f"{_verdict(paired <= INSTRUMENT_TARGET)} |"
        )
    lines += [
        "",
        f"The target, `setup()` at most the bare SDK's cost + {INSTRUMENT_TARGET - 1:.0%}, is judged on the whole "
        "request's CPU, paired by round. Only CPU per request is quoted: wall time includes waiting for the "
        "sink's answers during the final flush and whatever else the machine runs.",
        "",
        "### Where `setup()`'s extra CPU goes",
        "",
        "Each of `setup()`'s additions alone on top of the bare SDK, unsampled (where they weigh most), and "
        "`setup()` with a no-op meter provider installed before it (the fix proposed below), all in the same "
        "rounds as the table above:",
        "",
        "| Variant | CPU µs/request, median | min-max over rounds | - bare SDK of the same sampling, same round "
        "(median) | / bare SDK, median of the rounds' ratios |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant in VARIANTS[5:]:
        bare = "bare_sampled" if variant.sampled else "bare_unsampled"
        low, high = result.spread(variant.name)
        lines.append(
            f"| {variant.label} | {result.cpu_median(variant.name):.0f} | {low:.0f}-{high:.0f} "
            f"| {result.paired_difference(variant.name, bare):+.0f} | {result.paired_ratio(variant.name, bare):.3f} |"
        )
    meter = result.paired_difference("bare_meter", "bare_unsampled")
    fixed_s = result.paired_ratio("setup_noop_meter_sampled", "bare_sampled")
    fixed_u = result.paired_ratio("setup_noop_meter_unsampled", "bare_unsampled")
    lines += [
        "",
        "The largest part is not a feature: the SDK's `_initialize_components`, which `setup()` and the "
        "configurator call, always installs an SDK `MeterProvider`, with no reader when `OTEL_METRICS_EXPORTER` is "
        "`none` (tracesearch-instrument's default). Flask's instrumentation then records `http.server."
        "active_requests` twice and `http.server.duration` once per request into SDK instruments whose "
        "measurements nothing reads (a profile shows the time in `Measurement.__post_init__`, `Counter.add` and "
        f"`Histogram.record`): {meter:+.0f} µs per request here, where the bare SDK's no-op meter provider costs "
        f"nothing. With a no-op meter provider installed first, `setup()` / bare SDK is {fixed_s:.3f} sampled and "
        f"{fixed_u:.3f} unsampled. `setup()` now does exactly that (when no metrics exporter is set), so (c) "
        "includes the fix and the two `setup()` rows measure one configuration twice: their difference is this "
        "run's noise. What remains is what `setup()` adds on purpose: the record factory stamping "
        "trace ids on every log record (per log call, so it grows with a request's log lines) and extracting "
        "Jaeger and B3 headers besides W3C on every request. Single processes vary by up to 20% on this shared "
        "machine (the min-max columns); the paired medians are the figures to compare.",
        "",
    ]
    if result.formatter is not None:
        lines += formatter_section(result)
    return lines


def formatter_section(result: InstrumentResult) -> list[str]:
    fmt = result.formatter
    assert fmt is not None
    lines = [
        "### ECS log formatting per record",
        "",
        f"`tracesearch.instrument.EcsFormatter` against `ecs_logging.StdlibFormatter` alone, in one process: per "
        f"round and case each formats {fmt.records:,} fresh records of the view's log call (`logger.info` with two "
        f"`%d` arguments), their order alternating by round; {fmt.rounds} rounds after a warm-up round, CPU time, "
        "medians. The logging instrumentation is on as `setup()` configures it (`inject_trace_context=True`), so "
        "records carry `otelTraceID`, `otelSpanID`, `otelTraceSampled` and `otelServiceName`: `StdlibFormatter` "
        "writes them as they are, `EcsFormatter` writes `trace.id`, `span.id` and `service.name` instead.",
        "",
        "| Record | `StdlibFormatter` µs/record | `EcsFormatter` µs/record | EcsFormatter / StdlibFormatter, median "
        "of the rounds' ratios | line bytes (Stdlib / Ecs) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case, label in FORMATTER_CASES.items():
        sizes = fmt.line_bytes[case]
        lines.append(
            f"| {label} | {fmt.median(case, 'ecs'):.1f} | {fmt.median(case, 'tracesearch'):.1f} "
            f"| **{fmt.ratio(case):.2f}** | {sizes['ecs']} / {sizes['tracesearch']} |"
        )
    stamped, unstamped = stats.median(fmt.create_us["stamped"]), stats.median(fmt.create_us["unstamped"])
    lines += [
        "",
        f"Making the record (`Logger.makeRecord`, in a span) costs {stamped:.1f} µs with the logging "
        f"instrumentation's stamping record factory and {unstamped:.1f} µs without: {stamped - unstamped:.1f} µs "
        "per log call of every logger, whatever the formatter, and part of `setup()`'s cost per request above.",
        "",
        "One line of each, in a span:",
        "",
        "```",
        fmt.samples["span"]["ecs"],
        fmt.samples["span"]["tracesearch"],
        "```",
        "",
    ]
    return lines


def splice_instrument(existing: str | None, config: Config, result: InstrumentResult) -> str:
    """The report with section 3 and its summary rows replaced (or added); the rest kept as it was."""
    section = instrument_section(result)
    rows = instrument_summary(result)
    if existing is None or not existing.startswith("# Benchmarks"):
        lines = [
            "# Benchmarks",
            "",
            WRITTEN_BY,
            "",
            "## Summary",
            "",
            "| Figure | Result | Target |",
            "| --- | --- | --- |",
            *rows,
            "",
            *section,
        ]
        return "\n".join(lines).rstrip() + "\n"
    lines = existing.replace(WRITTEN_BY_BEFORE, WRITTEN_BY).rstrip("\n").split("\n")
    lines = [line for line in lines if not line.startswith(INSTRUMENT_ROW)]
    if INSTRUMENT_HEADING in lines:
        start = lines.index(INSTRUMENT_HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    else:
        lines += ["", *section]
    if "## Summary" in lines:
        at = lines.index("## Summary") + 1
        while at < len(lines) and not lines[at].startswith("|"):
            at += 1
        while at < len(lines) and lines[at].startswith("|"):
            at += 1
        lines[at:at] = rows
    return "\n".join(lines).rstrip() + "\n"
