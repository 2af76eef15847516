"""Replacing one section of BENCHMARKS.md, so a part run alone keeps the others' figures."""

from __future__ import annotations

import re


def _pattern(heading: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)


def section(report: str, heading: str) -> str | None:
    """The section of ``report`` that starts at the line ``heading``, None when it has none."""
    found = _pattern(heading).search(report)
    return None if found is None else found.group(0).rstrip("\n") + "\n"


def replace_section(report: str, heading: str, text: str) -> str:
    """``report`` with the section that starts at the line ``heading`` (up to the next ``## `` line)
    replaced by ``text``, or ``text`` appended when the report has no such section."""
    pattern = _pattern(heading)
    body = text.rstrip("\n") + "\n"
    if pattern.search(report):
        return pattern.sub(lambda _: body + "\n", report, count=1).rstrip("\n") + "\n"
    return report.rstrip("\n") + "\n\n" + body
