"""``python -m bench.growth``'s pure parts: the load plan, the growth and extrapolation arithmetic, and
the section it writes into BENCHMARKS.md (no Elasticsearch, nothing timed)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from bench.growth import parse_args
from bench.growth_plan import NS_PER_S, PlanError, Step, parse_sizes, plan, window
from bench.growth_report import (
    HEADING,
    Facts,
    KindFigures,
    SizeFigures,
    extrapolate,
    growth,
    latency_table,
    section,
    sizes_from_json,
)
from bench.querybench import KINDS


def test_plan_adds_spans_step_by_step_and_stores_the_big_traces_first() -> None:
    assert plan([1_000_000, 3_000_000, 10_000_000], 250, 200) == [
        Step(1_000_000, 1_000_000, 250),
        Step(3_000_000, 2_000_000, 0),
        Step(10_000_000, 7_000_000, 0),
    ]


@pytest.mark.parametrize("sizes", [[], [1_000_000, 1_000_000], [3_000_000, 1_000_000], [40_000]])
def test_plan_refuses_sizes_that_do_not_grow_or_cannot_hold_the_big_traces(sizes: list[int]) -> None:
    with pytest.raises(PlanError):
        plan(sizes, 250, 200)


def test_sizes_are_read_with_k_and_m_suffixes() -> None:
    assert parse_sizes("1M, 2.5m,500k,1234") == [1_000_000, 2_500_000, 500_000, 1234]
    with pytest.raises(PlanError, match="'ten'"):
        parse_sizes("ten")


def test_window_is_the_last_24_hours_up_to_the_current_minute() -> None:
    now = 1_800_000_000 * NS_PER_S + 59 * NS_PER_S + 123
    start, end = window(now)
    assert end % (60 * NS_PER_S) == 0 and end <= now < end + 60 * NS_PER_S
    assert end - start == 24 * 3600 * NS_PER_S


def test_arguments_reject_a_plan_without_growth() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "3M,1M"])
    assert parse_args(["--sizes", "1M,3M", "--budget-min", "30"]).sizes == (1_000_000, 3_000_000)


def test_extrapolation_follows_the_power_law_through_both_points() -> None:
    # p95 doubles from 1M to 4M: b = 0.5, so 10M is sqrt(10) times 1M's.
    assert extrapolate(1_000_000, 10.0, 4_000_000, 20.0, 10_000_000) == pytest.approx(10.0 * 10**0.5)
    # A p95 that fell is carried flat, not projected to fall further.
    assert extrapolate(1_000_000, 10.0, 3_000_000, 8.0, 10_000_000) == pytest.approx(8.0)
    assert growth(10.0, 25.0) == 2.5


def _size(spans: int, scale: float) -> SizeFigures:
    kinds = [KindFigures(k, 150, 10.0 * scale, 20.0 * scale * (i + 1) / 5, 3.0) for i, k in enumerate(KINDS)]
    return SizeFigures(spans, spans // 2, 100.0, 5.0, spans * 500, 40, 300 * 2**20, kinds, 0.05)


def _facts(target: int) -> Facts:
    return Facts("python -m bench.growth", "2026-12-05 05:00 UTC", "abc", "8.19.21", "1g", 0, 86400 * NS_PER_S,
                 150, 15, 512, 4, target, 2, 1.5)  # fmt: skip


def test_table_gives_each_request_its_p95_growth_and_verdict() -> None:
    lines = latency_table([_size(1_000_000, 1.0), _size(10_000_000, 1.5)], 10_000_000)
    assert "p95 growth 1M → 10M" in lines[0] and "extrapolated" not in lines[0]
    assert len(lines) == 2 + len(KINDS)
    assert all(row.endswith("| 1.50x | met |") for row in lines[2:])
    missed = latency_table([_size(1_000_000, 1.0), _size(10_000_000, 2.5)], 10_000_000)
    assert all(row.endswith("| 2.50x | **missed** |") for row in missed[2:])


def test_a_run_short_of_the_target_says_so_and_extrapolates() -> None:
    text = section(_facts(10_000_000), [_size(1_000_000, 1.0), _size(3_000_000, 1.2)], "plot.png")
    assert text.startswith(HEADING + "\n")
    assert "**Only 3,000,000 spans fit the bench time here, not 10,000,000.**" in text
    assert "p95 at 10M, extrapolated" in text and "(extrapolated) |" in text
    assert "| 3,000,000 | 1,500,000 | 100 | 15,000 | 5 | 1.40 GiB | 500 | 40 | 300 MiB | 0.05 cores |" in text
    assert "![query p95 by stored spans](plot.png)" in text


def test_a_run_that_reached_the_target_extrapolates_nothing() -> None:
    text = section(_facts(10_000_000), [_size(1_000_000, 1.0), _size(10_000_000, 1.2)])
    assert "Only" not in text and "extrapolated" not in text


def test_saved_figures_render_the_same_section_again() -> None:
    sizes = [_size(1_000_000, 1.0), _size(3_000_000, 1.2)]
    saved = json.loads(json.dumps({"facts": asdict(_facts(10_000_000)), "sizes": [asdict(s) for s in sizes]}))
    facts, again = sizes_from_json(saved)
    assert section(facts, again) == section(_facts(10_000_000), sizes)


def test_the_section_says_what_answered_the_latency_panel_at_each_size() -> None:
    sizes = [
        replace(_size(1_000_000, 1.0), latency_source="span-metrics+spans", rollup_docs=8_640, graph_docs=40_000),
        replace(_size(3_000_000, 1.2), latency_source="span-metrics", rollup_docs=17_280, graph_docs=41_000),
    ]
    text = section(_facts(10_000_000), sizes)
    assert (
        "1M: `span-metrics+spans`, 8,640 rollup documents, 40,000 service-graph documents; "
        "3M: `span-metrics`, 17,280 rollup documents, 41,000 service-graph documents"
    ) in text
    assert "rollup documents" not in section(_facts(10_000_000), [_size(1_000_000, 1.0), _size(3_000_000, 1.2)])
