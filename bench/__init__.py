"""Benchmarks of tracesearch against the real Elasticsearch of the dev stack: ``python -m bench``.

One run measures end-to-end OTLP ingest, the raw ``_bulk`` ceiling on the same documents, and query
latency over a stored data set of a million spans, and writes ``BENCHMARKS.md``.
"""
