"""Regular expressions from queries, on RE2: linear time in the text, whatever the pattern.

Python's ``re`` backtracks: ``(a+)+$`` against 30 "a"s and a "b" runs for minutes, holding a worker
thread (and the GIL) all along. RE2 (``google-re2``, the engine of Go's ``regexp``, which Tempo runs
TraceQL on) matches in time linear in the text and refuses what needs backtracking (backreferences,
lookaround) when the pattern is compiled. Every pattern a client sends goes through ``compile_pattern``;
the patterns of our own code stay on ``re``.

TraceQL regexes are fully anchored (``fullmatch``), as Tempo anchors them; ``.`` does not match a newline
unless ``dot_all`` (the in-memory twin of Lucene's regexp, where ``.`` matches any character).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Protocol

import re2

# Longest pattern accepted, in characters: Elasticsearch's own `index.max_regex_length` default, so a
# pattern that is accepted here is never refused there for its length.
MAX_REGEX_LENGTH: Final = 1_000
# Memory RE2 may use for one compiled pattern (its default): a pattern needing more is refused.
_MAX_MEM: Final = 8 << 20


class RegexError(ValueError):
    """A pattern RE2 cannot run; the message says why (unsupported syntax, too long, too big)."""


class Regex(Protocol):
    """What callers use of a compiled pattern."""

    @property
    def pattern(self) -> str: ...

    def fullmatch(self, text: str) -> object | None: ...


def _options(dot_all: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.dot_nl = dot_all
    options.max_mem = _MAX_MEM
    return options


_UNSUPPORTED_HINTS: Final = (
    *((f"invalid escape sequence: \\{d}", "backreferences (\\1) are not supported by RE2") for d in "123456789"),
    ("invalid perl operator: (?<", "lookbehind ((?<=, (?<!) is not supported by RE2"),
    ("invalid perl operator: (?=", "lookahead ((?=) is not supported by RE2"),
    ("invalid perl operator: (?!", "negative lookahead ((?!) is not supported by RE2"),
)


def _reason(error: Exception) -> str:
    raw = error.args[0] if error.args else error
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for prefix, hint in _UNSUPPORTED_HINTS:
        if text.startswith(prefix):
            return f"{text} ({hint}; TraceQL regexes are RE2, as in Tempo)"
    return text


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str, dot_all: bool = False) -> Regex:
    """``pattern`` compiled by RE2 (cached); :class:`RegexError` naming the reason when it cannot be."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise RegexError(f"the regular expression is {len(pattern)} characters long; at most {MAX_REGEX_LENGTH}")
    try:
        compiled: Regex = re2.compile(pattern, _options(dot_all))
    except re2.error as error:
        raise RegexError(_reason(error)) from None
    except (TypeError, ValueError, UnicodeError) as error:  # e.g. lone surrogates cannot be UTF-8
        raise RegexError(str(error)) from None
    return compiled


def fullmatch(pattern: Regex, text: str) -> bool:
    """Whether the whole of ``text`` matches (TraceQL's anchoring)."""
    try:
        return pattern.fullmatch(text) is not None
    except UnicodeError:  # a lone surrogate in a stored value cannot be matched as UTF-8
        return False
