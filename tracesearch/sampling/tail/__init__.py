"""Tail sampling in the Kafka ingester: whole traces buffered until quiet, then kept or dropped by
ordered policies (``policies``), with the buffer, decision cache (``buffer``) and the per-partition
offset tracking that keeps it restart safe (``offsets``). Pure: no Kafka, Elasticsearch or HTTP."""
