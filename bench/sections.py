"""Replacing one section of BENCHMARKS.md, so a part run alone keeps the others' figures."""

from __future__ import annotations

import re


def replace_section(report: str, heading: str, text: str, renamed_from: tuple[str, ...] = ()) -> str:
    """``report`` with the section that starts at the line ``heading`` (up to the next ``## `` line)
    replaced by ``text``, or ``text`` appended when the report has no such section. A section still
    under one of its former headings (``renamed_from``) is the one replaced, where it stands."""
    for old in renamed_from:
        if not re.search(rf"^{re.escape(heading)}$", report, re.M):
            report = re.sub(rf"^{re.escape(old)}$", lambda _: heading, report, count=1, flags=re.M)
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = text.rstrip("\n") + "\n"
    if pattern.search(report):
        return pattern.sub(lambda _: section + "\n", report, count=1).rstrip("\n") + "\n"
    return report.rstrip("\n") + "\n\n" + section
