"""Annotation templates: a tiny, Go-template-like syntax with nothing to execute.

A template is text with actions ``{{ .Value }}``, ``{{ .Threshold }}``, ``{{ .Window }}`` and
``{{ .Labels.<name> }}`` (spaces inside the braces optional). Nothing else is an action: no functions,
pipes, conditions or loops, so a rule file can never run code or loop, and a mistake is caught when the
rule is loaded (``check``), not when an alert fires. Rendering (``render``):

- ``.Value`` and ``.Threshold``: the number with up to 6 significant digits (``0.5234``, ``1250``);
- ``.Window``: the rule's window as written in a rule file (``5m``, ``90s``, ``1h``);
- ``.Labels.<name>``: that label of the alert (rule labels, ``group_by`` values, ``alertname``,
  ``severity``); a label the alert does not have renders as the empty string.

A literal ``{{`` is not possible; no annotation needs one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_FIELD = re.compile(r"\.(Value|Threshold|Window)|\.Labels\.([A-Za-z_][A-Za-z0-9_]*)")
FIELDS = ".Value, .Threshold, .Window or .Labels.<name>"


class TemplateError(ValueError):
    """What is wrong in a template (the caller names the field)."""


def check(template: str) -> None:
    """Refuse a template with an action other than the four fields, or an unclosed ``{{``."""
    for match in _ACTION.finditer(template):
        if not _FIELD.fullmatch(match.group(1)):
            raise TemplateError(f"unknown template action {{{{ {match.group(1)} }}}}: use {FIELDS}")
    rest = _ACTION.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise TemplateError("unbalanced {{ or }}: actions are written {{ .Value }}")


def render(template: str, *, value: float, threshold: float, window_s: float, labels: Mapping[str, str]) -> str:
    """The template with its actions replaced (see the module). A template that ``check`` refuses is
    not rendered: its text is returned as is rather than raising in the evaluator."""

    def replace(match: re.Match[str]) -> str:
        field = _FIELD.fullmatch(match.group(1))
        if field is None:
            return match.group(0)
        if field.group(2) is not None:
            return labels.get(field.group(2), "")
        name = field.group(1)
        if name == "Window":
            return format_duration(window_s)
        return format_number(value if name == "Value" else threshold)

    return _ACTION.sub(replace, template)


def format_number(value: float) -> str:
    return f"{value:.6g}"


def format_duration(seconds: float) -> str:
    """``300`` -> ``5m``: the largest unit that divides it (as a rule file says it), else seconds."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
