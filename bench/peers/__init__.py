"""``make bench-peers``: tracesearch, Jaeger v2 and Zipkin on one dedicated Elasticsearch node.

One deterministic corpus, encoded once per protocol, is sent to each system in turn (alternating order,
repeated); the report gives medians of ingest rate until searchable, spans acknowledged vs stored, CPU
per span of each system and of Elasticsearch, bytes per span after a force-merge and query latencies
through each system's own API. ``python -m bench.peers --help`` lists the settings.
"""
