"""SpanWriter on Elasticsearch: bulk writes of spans, read back item by item."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import elasticsearch
from elasticsearch import Elasticsearch

from tracesearch import prometheus
from tracesearch.model import Span
from tracesearch.storage.contracts import RejectedSpan, StorageUnavailable, WriteResult
from tracesearch.storage.es.document import bulk_body
from tracesearch.storage.es.native_body import BodyBuilder
from tracesearch.storage.es.search import TRANSPORT_ERRORS, is_transient

log = logging.getLogger(__name__)

_BULK_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"
# ~1.6 MB of NDJSON for typical spans: big enough to amortise a request, far below http.max_content_length.
MAX_BULK_SPANS = 1000


def _merged(results: Sequence[WriteResult]) -> WriteResult:
    merged = WriteResult()
    for r in results:
        merged.add(r)
    return merged


class EsSpanWriter:
    """SpanWriter on Elasticsearch ``_bulk`` with ``create`` and deterministic ids.

    Items that answer 201 or 409 (already there) are stored. Items that answer 429/5xx are sent
    again, alone, with exponential backoff; when the retries run out the whole call raises
    ``StorageUnavailable``. Other 4xx items are rejected with Elasticsearch's reason.
    """

    def __init__(
        self,
        client: Elasticsearch,
        index_prefix: str,
        retries: int = 3,
        backoff_s: float = 0.2,
        concurrency: int = 1,
        prepare: Callable[[], None] = lambda: None,
        build_body: BodyBuilder = bulk_body,
    ):
        self._client = client
        self._prepare = prepare  # e.g. install the index templates, once, before the first write
        self._prefix = index_prefix
        self._build_body = build_body  # the compiled core's or the Python reference (native_body.body_builder)
        self._retries = retries
        self._backoff_s = backoff_s
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Writes in bulk requests of at most MAX_BULK_SPANS spans: Elasticsearch refuses huge
        requests (413) and sheds load on them (429), and a backlog would otherwise build them.

        Several requests of one write are in flight at once (``concurrency``): Elasticsearch indexes
        one bulk request of a one-shard index on one thread, so a lone writer (an ingester) would
        leave the other cores idle. The call returns when every request is answered; if any raised,
        it raises after the others finished (the caller retries the whole write, idempotently)."""
        self._prepare()
        chunks = [spans[start : start + MAX_BULK_SPANS] for start in range(0, len(spans), MAX_BULK_SPANS)]
        if len(chunks) <= 1 or self._concurrency <= 1:
            result = WriteResult()
            for chunk in chunks:
                self._write_chunk(chunk, result)
            return result
        results = [WriteResult() for _ in chunks]
        futures = [self._executor().submit(self._write_chunk, c, r) for c, r in zip(chunks, results, strict=True)]
        errors = [f.exception() for f in futures]  # waits for all: none is left running behind a raise
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return _merged(results)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="bulk")
            return self._pool

    def _write_chunk(self, spans: Sequence[Span], result: WriteResult) -> None:
        pending = list(spans)
        attempt = 0
        while pending:
            pending = self._write_once(pending, result)
            if not pending:
                break
            attempt += 1
            prometheus.BULK_RETRIES.inc()
            if attempt > self._retries:
                raise StorageUnavailable(f"Elasticsearch kept refusing {len(pending)} spans (429/5xx)")
            time.sleep(self._backoff_s * 2 ** (attempt - 1))

    def _write_once(self, spans: list[Span], result: WriteResult) -> list[Span]:
        body = self._build_body(self._prefix, spans)
        started = time.perf_counter()
        try:
            # Pre-serialised NDJSON: the client sends bytes as they are, skipping a second serialisation.
            response = self._client.bulk(operations=body, filter_path=_BULK_FILTER)  # type: ignore[arg-type]
        except TRANSPORT_ERRORS as exc:
            raise StorageUnavailable(f"Elasticsearch unreachable: {exc}") from exc
        except elasticsearch.ApiError as exc:
            if is_transient(exc.meta.status):
                return spans
            raise StorageUnavailable(f"Elasticsearch refused the bulk request: {exc}") from exc
        prometheus.BULK_SECONDS.observe(time.perf_counter() - started)
        answer = response.body
        if not answer.get("errors"):
            result.stored += len(spans)
            result.created.extend(spans)
            prometheus.SPANS_INDEXED.inc(len(spans))
            return []
        stored_before = result.stored
        retry = self._classify(spans, answer["items"], result)
        prometheus.SPANS_INDEXED.inc(result.stored - stored_before)
        return retry

    def _classify(self, spans: list[Span], items: list[dict[str, Any]], result: WriteResult) -> list[Span]:
        retry: list[Span] = []
        for span, item in zip(spans, items, strict=True):
            outcome = item["create"]
            status = outcome["status"]
            if status < 300:
                result.stored += 1
                result.created.append(span)
            elif status == 409:
                result.stored += 1
                result.duplicates += 1
                prometheus.SPANS_DUPLICATE.inc()
            elif is_transient(status):
                retry.append(span)
            else:
                error = outcome.get("error", {})
                reason = f"{error.get('type', 'error')}: {error.get('reason', 'rejected by Elasticsearch')}"
                result.rejected.append(RejectedSpan(span, reason))
                log.warning("span %s/%s rejected by Elasticsearch: %s", span.trace_id, span.span_id, reason)
        return retry
