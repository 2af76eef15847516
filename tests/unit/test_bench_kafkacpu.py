"""python -m bench.kafkacpu's report: medians per mode, every pass listed, a section of its own."""

from __future__ import annotations

from bench import sections
from bench.kafkacpu import HEADING, Pass, section


def test_the_section_has_the_median_of_each_mode_and_every_pass() -> None:
    passes = [Pass("off", 1000, 1.0, 30.0, 60.0), Pass("on", 1000, 1.0, 24.0, 29.0), Pass("off", 1000, 1.0, 32.0, 64.0)]
    text = section(passes, "python -m bench.kafkacpu", "abc")
    assert text.startswith(HEADING + "\n")
    assert "| `TRACESEARCH_NATIVE=off` | 31.0 | 62.0 | **93.0** |" in text
    assert "| `TRACESEARCH_NATIVE=on` | 24.0 | 29.0 | **53.0** |" in text
    assert "off 30.0+60.0, on 24.0+29.0, off 32.0+64.0" in text
    report = sections.replace_section("# Benchmarks\n\n## 1. Ingest\n\nx\n", HEADING, text)
    assert sections.section(report, HEADING) == text
