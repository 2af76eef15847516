"""Request parameters shared by the query API surfaces (Jaeger, Tempo, Zipkin): the marshmallow fields
that parse them (so the schemas of the views document their types), and the trace id of a path."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields

from tracesearch.api.blueprint import Whole
from tracesearch.api.http_errors import BadRequest
from tracesearch.model import is_hex, pad_trace_id
from tracesearch.query.durations import parse_go_duration

NS_PER_S = 1_000_000_000
MAX_NS = 2**63 - 1  # Elasticsearch longs; nanoseconds run out in 2262


def _canonical_trace_id(text: str) -> str | None:
    text = text.strip().lower()
    if not text or len(text) > 32 or not is_hex(text):
        return None
    return pad_trace_id(text)


def _not_a_trace_id(text: str) -> str:
    return f"{text.strip().lower()[:64]!r} is not a trace id of 1 to 32 hex digits"


def trace_id(text: str, field: str = "traceID") -> str:
    """A trace id of 1 to 32 hex digits (Zipkin's 16-digit ids included), as the 32-digit canonical form."""
    canonical = _canonical_trace_id(text)
    if canonical is None:
        raise BadRequest(f"{field}: {_not_a_trace_id(text)}", field=field)
    return canonical


def path_parameter(name: str, description: str) -> dict[str, str]:
    """The documentation of a path parameter (its type comes from the route)."""
    return {"in": "path", "name": name, "description": description}


TRACE_ID_PATH = path_parameter("trace_id", "1 to 32 hex digits (shorter ids are padded with zeros)")


class TraceId(fields.String):
    """A trace id of 1 to 32 hex digits, loaded as the 32-digit canonical form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        canonical = _canonical_trace_id(text)
        if canonical is None:
            raise ValidationError(Whole(f"{self.name}: {_not_a_trace_id(text)}"))
        return canonical


class TraceIds(fields.Field[list[str]]):
    """Comma-separated trace ids (blank items skipped), loaded canonical, first occurrences in order.
    Blank is missing; commas alone are no ids."""

    def __init__(self, most: int, **kwargs: Any):
        super().__init__(required=True, **kwargs)
        self.most = most

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if not str(value).strip():
            raise self.make_error("required")
        texts = [t for t in str(value).split(",") if t.strip()]
        if len(texts) > self.most:
            raise ValidationError(f"at most {self.most} ids, got {len(texts)}")
        ids = [_canonical_trace_id(t) for t in texts]
        for text, canonical in zip(texts, ids, strict=True):
            if canonical is None:
                raise ValidationError(Whole(f"{self.name}: {_not_a_trace_id(text)}"))
        return list(dict.fromkeys(i for i in ids if i is not None))


class Name(fields.String):
    """A required name; empty is the same problem as missing (clients send ``service=`` for none)."""

    def __init__(self, *, strip: bool = False, **kwargs: Any):
        super().__init__(required=True, **kwargs)
        self.strip = strip

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if self.strip:
            text = text.strip()
        if not text:
            raise self.make_error("required")
        return text


class GoDuration(fields.Field[int]):
    """A Go duration string (``1.2ms``) loaded as nanoseconds."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_go_duration(str(value))
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class UnixTime(fields.Field[int]):
    """Unix seconds (Tempo's unit), or nanoseconds, or RFC 3339, loaded as nanoseconds."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * NS_PER_S)
            except ValueError:
                raise ValidationError(f"{text!r} is not unix seconds or RFC 3339") from None
        if number != number or number < 0:
            raise ValidationError(f"{text!r} is not a time")
        ns = int(number) if number > 1e15 else int(number * NS_PER_S)
        if ns >= MAX_NS:
            raise ValidationError(f"{text!r} is after the year 2262")
        return ns


class CappedInt(fields.Integer):
    """A positive integer; larger than ``most`` is cut to ``most`` (documented as the maximum)."""

    def __init__(self, most: int, **kwargs: Any):
        metadata = {"minimum": 1, "maximum": most, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)
        self.most = most

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = str(value)
        number = 0
        # Decimal digits only: int() alone would also take "+5", " 5" and "1_000".
        if text.isdecimal():
            digits = text.lstrip("0") or "0"
            # int() refuses thousands of digits; past 30 a number is past every limit anyway.
            number = int(digits) if len(digits) <= 30 else self.most
        if number <= 0:
            raise ValidationError(Whole(f"invalid {self.name} {text!r}: must be a positive integer"))
        return min(number, self.most)
