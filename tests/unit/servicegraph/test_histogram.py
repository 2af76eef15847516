"""Quantiles from the fixed log buckets are within the stated error of the exact quantiles."""

from __future__ import annotations

import math
import random

import pytest

from tracesearch.servicegraph import histogram
from tracesearch.servicegraph.histogram import BOUNDS, STATED_RELATIVE_ERROR, bucket_of_ns, quantile


def exact_quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] / 1e9


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("q", [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_are_within_the_stated_error(seed: int, q: float) -> None:
    rng = random.Random(seed)
    durations = [int(rng.lognormvariate(16, 2.5)) + 1_000 for _ in range(rng.randrange(1, 5_000))]
    counts = histogram.dense({})
    for d in durations:
        counts[bucket_of_ns(d)] += 1
    exact = exact_quantile(durations, q)
    assert abs(quantile(counts, BOUNDS, q) - exact) <= STATED_RELATIVE_ERROR * exact


def test_the_error_bound_holds_at_every_bucket_edge() -> None:
    assert histogram.MAX_RELATIVE_ERROR <= STATED_RELATIVE_ERROR
    for index in range(2, histogram.OVERFLOW):
        for ns in (int(BOUNDS[index - 1] * 1e9) + 1, int(BOUNDS[index] * 1e9)):
            counts = [0] * histogram.BUCKETS
            counts[bucket_of_ns(ns)] = 1
            assert abs(quantile(counts, BOUNDS, 0.5) - ns / 1e9) <= STATED_RELATIVE_ERROR * ns / 1e9, ns


def test_prometheus_buckets_are_exact_sums_of_ours() -> None:
    """A duration on a Prometheus bound (le is inclusive) counts in that bucket, not the next."""
    sparse: dict[int, int] = {}
    for ns in (2_000_000, 2_000_001, 16_384_000_000, 16_384_000_001, 500):
        index = bucket_of_ns(ns)
        sparse[index] = sparse.get(index, 0) + 1
    folded = histogram.prometheus_counts(sparse)
    assert histogram.PROMETHEUS_BOUNDS[0] == 0.002 and histogram.PROMETHEUS_BOUNDS[-1] == 16.384
    assert folded[0] == 2  # 500 ns and 2 ms: le="0.002"
    assert folded[1] == 1  # 2 ms + 1 ns: le="0.004"
    assert folded[-2] == 1 and folded[-1] == 1  # 16.384 s: le="16.384"; just over: +Inf


def test_empty_histogram_has_no_quantile() -> None:
    assert math.isnan(quantile([0] * histogram.BUCKETS, BOUNDS, 0.5))
    with pytest.raises(ValueError):
        quantile([1], BOUNDS, 1.5)


@pytest.mark.parametrize("seed", range(20))
def test_the_sparse_quantile_is_the_dense_one(seed: int) -> None:
    rng = random.Random(seed)
    sparse = {rng.randrange(histogram.BUCKETS): rng.randrange(1, 50) for _ in range(rng.randrange(1, 30))}
    for q in (0.0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0, rng.random()):
        assert histogram.sparse_quantile(sparse, q) == quantile(histogram.dense(sparse), BOUNDS, q)
    qs = (0.99, 0.5, 0.5, 0.0, 1.0, rng.random())
    assert histogram.sparse_quantiles(sparse, qs) == {q: quantile(histogram.dense(sparse), BOUNDS, q) for q in qs}
    assert math.isnan(histogram.sparse_quantile({}, 0.5))
