"""TraceQL tokens, following the rules of Tempo's lexer (``pkg/traceql/lexer.go``).

* ``span.`` ``resource.`` ``event.`` ``link.`` ``instrumentation.`` ``parent.`` and a lone ``.`` start an
  attribute name, which runs until whitespace or one of ``{ } ( ) = ~ ! < > & | ^ ,``; ``"..."`` parts
  inside it are quoted (``span."a b"``, ``span.x."a.b"`` is the name ``x.a.b``).
* ``span:name``, ``trace:id`` ... are one scoped-intrinsic token.
* Numbers: ``12``, ``1.5``, ``.95``, ``1e3``; a number directly followed by letters is a duration
  (``1.5s``, ``250us``, ``100µs``, ``1h30m``; units ns us µs ms s m h d w y).
* Strings: ``"..."`` with the escapes ``\\" \\\\ \\n \\t \\r`` (any other backslash pair is kept as written,
  so regexes such as ``"\\d+"`` and Grafana's ``${var:regex}`` output work), and raw backtick strings.
* A leading ``-`` is its own token; the parser folds it into the number that follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from tracesearch.query.durations import GO_UNIT_NS
from tracesearch.query.traceql.errors import TraceQLError

ATTRIBUTE_SCOPES: Final = ("span", "resource", "event", "link", "instrumentation", "parent")
INTRINSIC_SCOPES: Final = ("span", "trace", "event", "link", "instrumentation")

# Longest first, so that ``!>>`` wins over ``!>`` and ``!``.
_OPERATORS: Final = (
    "!>>", "!<<", "&>>", "&<<",
    ">>", "<<", ">=", "<=", "!=", "=~", "!~", "!>", "!<", "&>", "&<", "&~", "&&", "||",
    "=", ">", "<", "!", "~", "|", "+", "-", "*", "/", "%", "^",
)  # fmt: skip
_PUNCTUATION: Final = "{}(),"
_NOT_ATTRIBUTE: Final = frozenset(" \t\r\n\f\v{}()=~!<>&|^,")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ASCII digits only: str.isdigit() and a Unicode \d also take "³" and "٣", which no number here is.
_DIGITS: Final = frozenset("0123456789")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WORD_TAIL = re.compile(r"[0-9A-Za-z_µμ.]+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w|y)")
# Go's units, and TraceQL's longer ones.
_UNIT_NS: Final = {
    **GO_UNIT_NS,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
    "y": 31_536_000_000_000_000,
}
_ESCAPES: Final = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, slots=True)
class Token:
    """kind: ``{ } ( ) ,`` themselves, ``op``, ``string``, ``int``, ``float``, ``duration``, ``ident``,
    ``attr`` (value = (scope, name)), ``intrinsic`` (value = (scope, name)) or ``eof``."""

    kind: str
    text: str
    pos: int
    value: object = None

    def describe(self) -> str:
        if self.kind == "eof":
            return "the end of the query"
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"'{text}'"


def _is_digits(text: str) -> bool:
    return bool(text) and _DIGITS.issuperset(text)


def tokenize(query: str) -> list[Token]:
    return _Lexer(query).run()


class _Lexer:
    def __init__(self, query: str) -> None:
        self.query = query
        self.pos = 0
        self.tokens: list[Token] = []

    def fail(self, reason: str, position: int) -> TraceQLError:
        return TraceQLError(reason, self.query, position)

    def run(self) -> list[Token]:
        query = self.query
        while True:
            while self.pos < len(query) and query[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(query):
                self.tokens.append(Token("eof", "", len(query)))
                return self.tokens
            self.tokens.append(self.next_token())

    def next_token(self) -> Token:
        query, start = self.query, self.pos
        char = query[start]
        if char in _PUNCTUATION:
            self.pos += 1
            return Token(char, char, start)
        if char in '"`':
            return self.string(char)
        if char in _DIGITS or (char == "." and start + 1 < len(query) and query[start + 1] in _DIGITS):
            return self.number()
        if char == ".":
            self.pos += 1
            return self.attribute("", start)
        match = _IDENT.match(query, start)
        if match:
            return self.word(match.group(), start)
        for op in _OPERATORS:
            if query.startswith(op, start):
                self.pos += len(op)
                return Token("op", op, start)
        if char == "&":
            raise self.fail("unexpected '&'; did you mean '&&'?", start)
        raise self.fail(f"unexpected character '{char}'", start)

    def word(self, word: str, start: int) -> Token:
        after = start + len(word)
        following = self.query[after : after + 1]
        if following == "." and word in ATTRIBUTE_SCOPES:
            if word == "parent":
                raise self.fail("the 'parent.' scope is not supported", start)
            self.pos = after + 1
            return self.attribute(word, start)
        if following == ":":
            return self.scoped_intrinsic(word, start)
        self.pos = after
        return Token("ident", word, start)

    def scoped_intrinsic(self, scope: str, start: int) -> Token:
        if scope not in INTRINSIC_SCOPES:
            raise self.fail(
                f"unknown intrinsic scope '{scope}:'; expected one of {_list(INTRINSIC_SCOPES, ':')}", start
            )
        name_at = start + len(scope) + 1
        match = _IDENT.match(self.query, name_at)
        if not match:
            raise self.fail(f"expected an intrinsic name after '{scope}:'", name_at)
        self.pos = match.end()
        return Token("intrinsic", self.query[start : self.pos], start, (scope, match.group()))

    def attribute(self, scope: str, start: int) -> Token:
        query, parts = self.query, []
        while self.pos < len(query) and not _ends_attribute(query[self.pos]):
            if query[self.pos] == '"':
                parts.append(self.quoted_name())
            else:
                parts.append(query[self.pos])
                self.pos += 1
        name = "".join(parts)
        if not name:
            prefix = f"{scope}." if scope else "."
            raise self.fail(f"expected an attribute name after '{prefix}'", self.pos)
        return Token("attr", query[start : self.pos], start, (scope, name))

    def quoted_name(self) -> str:
        start = self.pos
        text = self.escaped_text('"', start)
        if text == "":
            raise self.fail("an attribute name cannot be empty", start)
        return text

    def string(self, quote: str) -> Token:
        start = self.pos
        if quote == "`":
            end = self.query.find("`", start + 1)
            if end < 0:
                raise self.fail("unterminated string: missing the closing '`'", start)
            self.pos = end + 1
            return Token("string", self.query[start : self.pos], start, self.query[start + 1 : end])
        value = self.escaped_text('"', start)
        return Token("string", self.query[start : self.pos], start, value)

    def escaped_text(self, quote: str, start: int) -> str:
        query, out = self.query, list[str]()
        position = start + 1
        while position < len(query):
            char = query[position]
            if char == quote:
                self.pos = position + 1
                return "".join(out)
            if char == "\\" and position + 1 < len(query):
                escaped = query[position + 1]
                # Unknown escapes stay as written: Grafana's ${var:regex} sends "\{id\}", and "\d+" means \d+.
                out.append(_ESCAPES.get(escaped, "\\" + escaped))
                position += 2
                continue
            out.append(char)
            position += 1
        raise self.fail(f"unterminated string: missing the closing '{quote}'", start)

    def number(self) -> Token:
        query, start = self.query, self.pos
        match = _NUMBER.match(query, start)
        assert match is not None  # the caller saw a digit
        tail = _WORD_TAIL.match(query, match.end())
        if tail and not _is_digits(tail.group().replace(".", "")):
            return self.duration(start, _WORD_TAIL.match(query, start))
        self.pos = match.end()
        text = match.group()
        if re.fullmatch(r"\d+", text):
            return Token("int", text, start, int(text))
        return Token("float", text, start, float(text))

    def duration(self, start: int, match: re.Match[str] | None) -> Token:
        assert match is not None
        text = match.group()
        total, position = 0.0, 0
        for part in _DURATION_PART.finditer(text):
            if part.start() != position:
                break
            total += float(part.group(1)) * _UNIT_NS[part.group(2)]
            position = part.end()
        if position != len(text) or position == 0:
            raise self.fail(f"invalid duration '{text}'; durations look like 250us, 1.5ms, 2s, 1h30m", start)
        self.pos = start + len(text)
        return Token("duration", text, start, round(total))


def _ends_attribute(char: str) -> bool:
    return char in _NOT_ATTRIBUTE or char.isspace()


def _list(words: tuple[str, ...], suffix: str) -> str:
    return ", ".join(f"'{word}{suffix}'" for word in words)
