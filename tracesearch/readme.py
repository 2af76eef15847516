"""Keeps the README's configuration table equal to the settings module (checked by a unit test)."""

from __future__ import annotations

import re
from pathlib import Path

from tracesearch.settings import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"(<!-- settings-table -->\n).*?(<!-- /settings-table -->)", re.S)


def rendered(text: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + settings_table() + "\n" + m.group(2), text)


def update() -> bool:
    text = README.read_text()
    new = rendered(text)
    README.write_text(new)
    return new != text
