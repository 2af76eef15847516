"""The query data set: a million spans over 24 hours, loaded once through ``_bulk`` and then reused.

A small meta document beside the span indices records what was loaded (generator version, span count,
the end of the 24 h window, the ids of the 200-span traces), so a rerun can check the data set is
complete and current instead of loading it again.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from bench import aggregates, es, loadgen, synth
from bench.config import Config
from bench.ingest import BULK_HEADERS, BULK_PATH, check_bulk
from bench.log import say
from tracesearch.model import Span
from tracesearch.storage.es.document import bulk_body

# Bump when the generator changes: a data set of another version is loaded again.
# 2: the service-graph and span-metrics aggregates are computed and stored with the spans.
# 3: issue 14's index format (best_compression, whole _source) and the per-service latency rollups.
VERSION = 3
NS_PER_S = 1_000_000_000
WINDOW_S = 24 * 3600
# Older than this and the service's default 7-day trace lookback could miss it: load again.
MAX_AGE_S = 5 * 86400
LOAD_CONCURRENCY = 4


@dataclass
class Dataset:
    version: int
    spans: int
    end_ns: int
    big_trace_ids: list[str]
    big_trace_spans: int
    services: list[str]
    load_seconds: float = 0.0
    loaded_now: bool = False

    @property
    def start_ns(self) -> int:
        return self.end_ns - WINDOW_S * NS_PER_S


def meta_index(prefix: str) -> str:
    return f"{prefix}-meta"


def _read_meta(es_url: str, prefix: str) -> Dataset | None:
    try:
        found = es.call(es_url, "GET", f"/{meta_index(prefix)}/_doc/dataset")
    except es.EsError:
        return None
    try:
        return Dataset(**found["_source"])
    except TypeError:
        return None


def _reusable(es_url: str, config: Config, found: Dataset | None) -> bool:
    if found is None or found.version != VERSION:
        return False
    fresh = time.time_ns() - found.end_ns < MAX_AGE_S * NS_PER_S
    big_enough = found.spans >= config.query_spans and len(found.big_trace_ids) >= config.big_traces
    return fresh and big_enough and es.count(es_url, config.query_prefix) == found.spans


def ensure(config: Config, es_url: str) -> Dataset:
    found = _read_meta(es_url, config.query_prefix)
    if _reusable(es_url, config, found):
        assert found is not None
        found.loaded_now = False
        say(f"reusing the {found.spans:,} spans of {config.query_prefix} (loaded before)")
        return found
    return load(config, es_url)


def load(config: Config, es_url: str) -> Dataset:
    prefix = config.query_prefix
    drop(es_url, prefix)
    es.install(es_url, prefix)
    end_ns = (time.time_ns() // (60 * NS_PER_S)) * 60 * NS_PER_S
    factory = synth.TraceFactory(synth.SERVICES, config.seed + 1)
    big_ids = [factory.hex_id(128) for _ in range(config.big_traces)]
    dataset = Dataset(VERSION, config.query_spans, end_ns, big_ids, config.big_trace_spans, list(synth.SERVICES))
    say(f"loading {config.query_spans:,} spans into {prefix} through _bulk (done once; later runs reuse them)")
    host, port = es.host_port(es_url)
    began = time.monotonic()
    with aggregates.Recorder(es_url, prefix) as recorder:
        bodies = _bodies(factory, dataset, prefix, config, recorder)
        result = loadgen.post_stream(port, BULK_PATH, BULK_HEADERS, bodies, LOAD_CONCURRENCY, check_bulk, host)
    stored = es.count(es_url, prefix)
    if result.failures or stored != dataset.spans:
        raise RuntimeError(f"loading {prefix}: {stored} of {dataset.spans} stored; {result.failures[:3]}")
    dataset.load_seconds = time.monotonic() - began
    dataset.loaded_now = True
    es.call(es_url, "PUT", f"/{meta_index(prefix)}/_doc/dataset?refresh=true", asdict(dataset))
    say(f"loaded in {dataset.load_seconds:.0f}s ({dataset.spans / dataset.load_seconds:,.0f} spans/s incl. generation)")
    return dataset


def _spans(factory: synth.TraceFactory, dataset: Dataset, config: Config) -> Iterator[Span]:
    rng = factory.rng
    start_ns = dataset.start_ns
    for trace_id in dataset.big_trace_ids:
        yield from factory.trace(dataset.big_trace_spans, rng.randrange(start_ns, dataset.end_ns), trace_id)
    rest = dataset.spans - len(dataset.big_trace_ids) * dataset.big_trace_spans
    yield from itertools.chain.from_iterable(synth.traces(factory, rest, start_ns, dataset.end_ns))


def _bodies(
    factory: synth.TraceFactory, dataset: Dataset, prefix: str, config: Config, recorder: aggregates.Recorder
) -> Iterator[bytes]:
    for batch in synth.batches(_spans(factory, dataset, config), config.batch_spans):
        recorder.observe(batch)
        yield bulk_body(prefix, batch)


def drop(es_url: str, prefix: str) -> None:
    es.drop_prefix(es_url, prefix)
    es.delete_indices(es_url, meta_index(prefix))
