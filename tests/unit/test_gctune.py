"""The collector settings of the long-running roles (tracesearch/gctune.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tracesearch import gctune


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored")
def test_the_service_collects_its_young_generation_every_50000_net_allocations() -> None:
    gctune.tune()
    assert gc.get_threshold() == (50_000, 20, 20)


@pytest.mark.usefixtures("restored")
def test_the_ingester_collects_its_young_generation_twenty_times_less_often() -> None:
    gctune.tune(gctune.INGESTER_GEN0_THRESHOLD)
    assert gc.get_threshold() == (1_000_000, 20, 20)
