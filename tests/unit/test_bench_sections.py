"""A benchmark part run alone replaces its own section of BENCHMARKS.md and keeps the others."""

from __future__ import annotations

from pathlib import Path

from bench import cpuprofile
from bench.sections import replace_section

REPORT = "# Benchmarks\n\n## 1. Ingest\n\nold ingest\n\n## 2. Query\n\nold query\n"


def test_a_section_is_replaced_in_place_and_the_others_kept() -> None:
    assert replace_section(REPORT, "## 1. Ingest", "## 1. Ingest\n\nnew ingest\n") == (
        "# Benchmarks\n\n## 1. Ingest\n\nnew ingest\n\n## 2. Query\n\nold query\n"
    )
    assert replace_section(REPORT, "## 2. Query", "## 2. Query\n\nnew query") == (
        "# Benchmarks\n\n## 1. Ingest\n\nold ingest\n\n## 2. Query\n\nnew query\n"
    )


def test_a_section_the_report_lacks_is_appended() -> None:
    added = replace_section(REPORT, "## 3. Alerts", "## 3. Alerts\n\nfast\n")
    assert added.endswith("old query\n\n## 3. Alerts\n\nfast\n")


def test_a_heading_inside_another_line_is_not_a_section() -> None:
    report = "## 1. Ingest\n\nsee ## 2. Query below\n"
    assert replace_section(report, "## 2. Query", "## 2. Query\n\nq\n") == report + "\n## 2. Query\n\nq\n"


def test_a_renamed_section_is_replaced_where_it_stands() -> None:
    renamed = replace_section(REPORT, "## 1. Ingest again", "## 1. Ingest again\n\nnew\n", ("## 1. Ingest",))
    assert renamed == "# Benchmarks\n\n## 1. Ingest again\n\nnew\n\n## 2. Query\n\nold query\n"
    # Once renamed, the old heading is no longer looked for (a section of that name elsewhere stays).
    both = REPORT + "\n## 3. New\n\nx\n"
    kept = replace_section(both, "## 3. New", "## 3. New\n\ny\n", ("## 1. Ingest",))
    assert "## 1. Ingest\n\nold ingest" in kept and kept.endswith("## 3. New\n\ny\n")


def test_the_cpu_profile_subsection_is_placed_before_section_1b_and_kept_by_a_full_run() -> None:
    rendered = "# Benchmarks\n\n## 1. Ingest\n\n### Where the service's CPU goes\n\nhot\n\n## 1b. Kafka\n\nk\n"
    profile = f"{cpuprofile.HEADING}\n\n| a | 1 |\n"
    placed = cpuprofile.place(rendered, profile)
    assert placed.index(cpuprofile.HEADING) < placed.index("## 1b.")
    assert cpuprofile.extract(placed) == profile + "\n"
    # Written again: replaced, not added; a freshly rendered report (no profile) keeps the old one.
    assert cpuprofile.place(placed, profile.replace("1", "2")).count(cpuprofile.HEADING) == 1
    assert cpuprofile.keep(placed, rendered) == placed
    assert cpuprofile.keep(None, rendered) == rendered


def test_profile_samples_go_to_the_first_matching_category() -> None:
    flush = ["Thread.run (threading.py:1)", "ServiceGraphStage._run (a)", "EsAggregateWriter.write (b)", "urllib3 (c)"]
    decode = ["export_traces (x)", "decode_export_request (y)", "admit (tracesearch/admission.py:3)"]
    assert cpuprofile.categorise(flush).startswith("service-graph flush thread")
    assert cpuprofile.categorise(decode) == "decode: admission (validate, trim to limits)"
    assert cpuprofile.categorise(["main (z)"]) == cpuprofile.OTHER


def test_a_full_run_keeps_the_sections_of_bench_peers_es_cost_and_growth(tmp_path: Path) -> None:
    from bench.cli import _kept_sections
    from bench.es_cost_report import HEADING as ES_COST
    from bench.growth_report import HEADING as GROWTH
    from bench.peers.report import HEADING as PEERS

    output = tmp_path / "BENCHMARKS.md"
    output.write_text(f"{REPORT}\n{PEERS}\n\npeers\n\n{ES_COST}\n\ncost\n\n{GROWTH}\n\ngrowth\n")
    kept = _kept_sections("# Benchmarks\n\n## 1. Ingest\n\nnew ingest\n", output)
    kept_part = f"{PEERS}\n\npeers\n\n{ES_COST}\n\ncost\n\n{GROWTH}\n\ngrowth\n"
    expected = f"# Benchmarks\n\n## 1. Ingest\n\nnew ingest\n\n{kept_part}"
    assert kept == expected
