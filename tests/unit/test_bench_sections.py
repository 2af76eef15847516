"""A benchmark part run alone replaces its own section of BENCHMARKS.md and keeps the others."""

from __future__ import annotations

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
