"""Replacing one section of BENCHMARKS.md, so a part run alone keeps the others' figures."""

from __future__ import annotations

import re


def _pattern(heading: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)


def section(report: str, heading: str) -> str | None:
    """The section of ``report`` that starts at the line ``heading``, None when it has none."""
    found = _pattern(heading).search(report)
    return None if found is None else found.group(0).rstrip("\n") + "\n"


def replace_section(report: str, heading: str, text: str, renamed_from: tuple[str, ...] = ()) -> str:
    """``report`` with the section that starts at the line ``heading`` (up to the next ``## `` line)
    replaced by ``text``, or ``text`` appended when the report has no such section. A section still
    under one of its former headings (``renamed_from``) is the one replaced, where it stands."""
    for old in renamed_from:
        if not re.search(rf"^{re.escape(heading)}$", report, re.M):
            report = re.sub(rf"^{re.escape(old)}$", lambda _: heading, report, count=1, flags=re.M)
    pattern = _pattern(heading)
    body = text.rstrip("\n") + "\n"
    if pattern.search(report):
        return pattern.sub(lambda _: body + "\n", report, count=1).rstrip("\n") + "\n"
    return report.rstrip("\n") + "\n\n" + body
