"""Per-service rollups keep their histogram in one long field with doc values: bucket << 40 | count."""

from __future__ import annotations

import random

from tracesearch.servicegraph.histogram import BUCKETS
from tracesearch.storage.es.aggregate_writer import PACK_SHIFT, pack, unpack


def test_packed_histograms_come_back_as_they_were() -> None:
    rng = random.Random(3)
    for _ in range(200):
        buckets = {rng.randrange(BUCKETS): rng.randrange(1, 2**PACK_SHIFT) for _ in range(rng.randrange(0, 40))}
        packed = pack(buckets)
        assert packed == sorted(packed)  # as Elasticsearch returns sorted numeric doc values
        assert all(0 <= value < 2**63 for value in packed)
        assert unpack(packed) == buckets
