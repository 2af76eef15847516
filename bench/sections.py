"""Replacing one section of BENCHMARKS.md, so a part run alone keeps the others' figures."""

from __future__ import annotations

import re


def replace_section(report: str, heading: str, text: str) -> str:
    """``report`` with the section that starts at the line ``heading`` (up to the next ``## `` line)
    replaced by ``text``, or ``text`` appended when the report has no such section."""
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = text.rstrip("\n") + "\n"
    if pattern.search(report):
        return pattern.sub(lambda _: section + "\n", report, count=1).rstrip("\n") + "\n"
    return report.rstrip("\n") + "\n\n" + section
