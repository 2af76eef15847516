"""The SamplingStore conformance suite against the in-memory twin: one store shared by every 'process'."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.sampling_store_conformance import MakeStore, SamplingStoreConformance
from tracesearch.storage.contracts import SamplingStore
from tracesearch.storage.memory import MemorySampling


class TestMemorySampling(SamplingStoreConformance):
    @pytest.fixture
    def make_store(self) -> MakeStore:
        shared: list[MemorySampling] = []

        def make(clock: Callable[[], float]) -> SamplingStore:
            if not shared:
                shared.append(MemorySampling(clock))
            return shared[0]

        return make
