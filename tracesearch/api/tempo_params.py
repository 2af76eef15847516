"""Parameters of Tempo's endpoints, as the marshmallow schemas the views load them with (and the
OpenAPI document shows): typed, checked, and for search and metrics turned into one TraceQL query.

The legacy search parameters (``tags`` logfmt, ``minDuration``/``maxDuration``) are rewritten as
the TraceQL Tempo itself would run, so every search goes through one planner and one evaluator.
What depends on the clock (the default window, the metrics step) is resolved by the view with ``now``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validates_schema

from tracesearch.api.blueprint import Whole, bad_parameter
from tracesearch.api.http_errors import BadRequest
from tracesearch.api.params import NS_PER_S, CappedInt, GoDuration, UnixTime
from tracesearch.query.traceql import Query
from tracesearch.query.traceql.bounded import parse_bounded
from tracesearch.services.autocomplete import ATTRIBUTE_SCOPES

DEFAULT_LIMIT = 20
MAX_LIMIT = 1_000
DEFAULT_SPSS = 3
MAX_SPSS = 1_000
DEFAULT_TAG_LIMIT = 5_000
MAX_TAG_LIMIT = 10_000
DEFAULT_STEP_POINTS = 100
MAX_POINTS = 11_000
DEFAULT_METRICS_LOOKBACK_NS = 3600 * NS_PER_S
SCOPES = (*ATTRIBUTE_SCOPES, "intrinsic")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:/-]+")
_TIME = "unix seconds (also unix nanoseconds or RFC 3339)"


# ---------------------------------------------------------------------------------------------- results


def _window(start_ns: int | None, end_ns: int | None, now_ns: int, lookback_s: float) -> tuple[int, int]:
    if start_ns is None or end_ns is None:
        return now_ns - int(lookback_s * NS_PER_S), now_ns
    return start_ns, end_ns


@dataclass(frozen=True, slots=True)
class Search:
    query: Query
    text: str
    start_ns: int | None
    end_ns: int | None
    limit: int
    spss: int

    def window(self, now_ns: int, lookback_s: float) -> tuple[int, int]:
        """The range asked for, or the ``lookback_s`` before now."""
        return _window(self.start_ns, self.end_ns, now_ns, lookback_s)


@dataclass(frozen=True, slots=True)
class MetricsParams:
    query: Query
    text: str
    start_ns: int
    end_ns: int
    step_ns: int
    instant: bool


@dataclass(frozen=True, slots=True)
class Metrics:
    query: Query
    text: str
    start_ns: int | None
    end_ns: int | None
    since_ns: int | None
    step_ns: int | None

    def resolve(self, now_ns: int, instant: bool) -> MetricsParams:
        """The range (default: ``since`` before now, an hour) and the step (default: 100 points, 1s at
        least; an instant query is one step)."""
        lookback_s = (self.since_ns or DEFAULT_METRICS_LOOKBACK_NS) / NS_PER_S
        start_ns, end_ns = _window(self.start_ns, self.end_ns, now_ns, lookback_s)
        step_ns = self.step_ns or max((end_ns - start_ns) // DEFAULT_STEP_POINTS, NS_PER_S)
        if instant:
            step_ns = end_ns - start_ns
        if step_ns <= 0:
            raise BadRequest("parameter 'step' must be positive", field="step")
        if (end_ns - start_ns) // step_ns > MAX_POINTS:
            raise BadRequest(f"too many points: (end - start) / step must stay under {MAX_POINTS}", field="step")
        return MetricsParams(self.query, self.text, start_ns, end_ns, step_ns, instant)


# ---------------------------------------------------------------------------------------------- fields


class Logfmt(fields.Field[list[tuple[str, str]]]):
    """``k=v k2="a b"``: the legacy search tags, in order, each key once."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[tuple[str, str]]:
        try:
            words = shlex.split(str(value))
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        pairs: list[tuple[str, str]] = []
        for word in words:
            key, sep, value = word.partition("=")
            if not sep or not key:
                raise ValidationError(f"{word!r} is not key=value")
            if any(k == key for k, _ in pairs):
                raise ValidationError(f"duplicate key {key!r}")
            pairs.append((key, value))
        return pairs


def _known_scope(scope: str) -> None:
    if scope not in ("all", *SCOPES):
        raise ValidationError(Whole(f"invalid scope {scope!r}: one of {', '.join(SCOPES)}"))


# ---------------------------------------------------------------------------------------------- schemas


class TempoSchema(Schema):
    """Grafana sends empty values for unset parameters: here an empty value is an absent one."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _present(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.adjust({key: data[key] for key in data if data[key] != ""})

    def adjust(self, data: dict[str, Any]) -> dict[str, Any]:
        """What a subclass makes of the parameters present before they are loaded."""
        return data


class OptionalRange(TempoSchema):
    """``start``/``end`` narrow a lookup, nothing more: a half range, or 0 for either, is no range."""

    start = UnixTime(load_default=None, metadata={"description": f"start of the range, {_TIME}; with end"})
    end = UnixTime(load_default=None, metadata={"description": f"end of the range, {_TIME}; with start"})

    def adjust(self, data: dict[str, Any]) -> dict[str, Any]:
        if "start" in data and "end" in data and "0" not in (data["start"], data["end"]):
            return data
        return {key: value for key, value in data.items() if key not in ("start", "end")}


class TraceRangeArgs(OptionalRange):
    """Trace by id."""


class TagNamesArgs(OptionalRange):
    scope = fields.String(
        load_default="all",
        validate=_known_scope,
        metadata={"description": "attribute scope to list, or all", "enum": ["all", *SCOPES]},
    )
    q = fields.String(load_default="", metadata={"description": "TraceQL: only tags of the spans it selects"})
    limit = CappedInt(
        MAX_TAG_LIMIT, load_default=DEFAULT_TAG_LIMIT, metadata={"description": "at most this many names"}
    )

    @post_load
    def _scopes(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, "scopes": list(SCOPES) if data["scope"] == "all" else [data["scope"]]}


class TagValuesArgs(OptionalRange):
    q = fields.String(load_default="", metadata={"description": "TraceQL: only values on the spans it selects"})
    limit = CappedInt(
        MAX_TAG_LIMIT, load_default=DEFAULT_TAG_LIMIT, metadata={"description": "at most this many values"}
    )


class RequiredRange(TempoSchema):
    """``start``/``end`` together or neither (0 and 0 is neither); without them, a window before now."""

    start = UnixTime(load_default=None, metadata={"description": f"start of the range, {_TIME}; with end"})
    end = UnixTime(load_default=None, metadata={"description": f"end of the range, {_TIME}; with start"})

    def adjust(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("start") == "0" and data.get("end") == "0":
            return {key: value for key, value in data.items() if key not in ("start", "end")}
        return data

    @validates_schema
    def _range_is_whole(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data["start"], data["end"]
        if (start is None) != (end is None):
            raise ValidationError(Whole("parameters 'start' and 'end' go together: send both or neither"), "start")
        if start is not None and end <= start:
            raise ValidationError(Whole("parameter 'end' must be after 'start'"), "end")


class SearchArgs(RequiredRange):
    q = fields.String(load_default="", metadata={"description": "TraceQL query (default: the legacy parameters)"})
    tags = Logfmt(
        load_default=None,
        metadata={"description": 'legacy: logfmt `k=v k2="a b"`, each an exact match on a span or resource attribute'},
    )
    minDuration = GoDuration(load_default=None, metadata={"description": "legacy: shortest trace, Go duration (1.5ms)"})
    maxDuration = GoDuration(load_default=None, metadata={"description": "legacy: longest trace, Go duration (2s)"})
    limit = CappedInt(MAX_LIMIT, load_default=DEFAULT_LIMIT, metadata={"description": "at most this many traces"})
    spss = CappedInt(MAX_SPSS, load_default=DEFAULT_SPSS, metadata={"description": "spans per span set"})

    @validates_schema
    def _one_kind_of_search(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["q"].strip() and data["tags"]:
            raise ValidationError(Whole("can't specify tags and q"), "q")
        low, high = data["minDuration"], data["maxDuration"]
        if low is not None and high is not None and high < low:
            raise ValidationError(
                Whole("parameter 'maxDuration' must be greater than or equal to 'minDuration'"), "maxDuration"
            )

    @post_load
    def _search(self, data: dict[str, Any], **kwargs: Any) -> Search:
        text = data["q"].strip() or legacy_traceql(data["tags"] or [], data["minDuration"], data["maxDuration"])
        query = parse_bounded(text)  # a TraceQL error is the API's to render (field q), not a schema problem
        if query.metrics is not None:
            raise ValidationError(
                Whole("a TraceQL metrics query goes to /api/metrics/query_range, not /api/search"), "q"
            )
        return Search(query, text, data["start"], data["end"], data["limit"], data["spss"])


class MetricsArgs(RequiredRange):
    q = fields.String(
        load_default="", metadata={"description": "TraceQL metrics query, required: `{ } | rate() by (name)`"}
    )
    since = GoDuration(load_default=None, metadata={"description": "without start/end: this long before now (1h)"})
    step = GoDuration(load_default=None, metadata={"description": "Go duration between points (default: 100 points)"})

    @validates_schema
    def _has_query(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["q"].strip():
            raise ValidationError(
                Whole("parameter 'q' is required: a TraceQL metrics query such as '{} | rate()'"), "q"
            )

    @post_load
    def _metrics(self, data: dict[str, Any], **kwargs: Any) -> Metrics:
        text = data["q"].strip()
        query = parse_bounded(text)
        if query.metrics is None:
            raise ValidationError(
                Whole(
                    "not a metrics query: end it with | rate(), count_over_time(), quantile_over_time(duration, .95) "
                    "or histogram_over_time(duration)"
                ),
                "q",
            )
        return Metrics(query, text, data["start"], data["end"], data["since"], data["step"])


# ---------------------------------------------------------------------------------------------- legacy search


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _any_type_equals(name: str, value: str) -> str:
    """Legacy tags carry no type: ``503`` matches the string "503" and the number 503."""
    alternatives = [f"{name} = {_quote(value)}"]
    if re.fullmatch(r"-?\d+(\.\d+)?|true|false", value):
        alternatives.append(f"{name} = {value}")
    return alternatives[0] if len(alternatives) == 1 else "(" + " || ".join(alternatives) + ")"


def legacy_traceql(tags: list[tuple[str, str]], min_duration_ns: int | None, max_duration_ns: int | None) -> str:
    """``tags=k=v k2="a b"&minDuration=100ms`` as TraceQL. Tempo matches tag values as
    case-insensitive substrings; here they match exactly (``span.k``/``resource.k``), like Jaeger."""
    conditions = []
    for key, value in tags:
        name = key if _PLAIN_NAME.fullmatch(key) else _quote(key)
        conditions.append(_any_type_equals(f".{name}", value))
    if min_duration_ns is not None:
        conditions.append(f"traceDuration >= {min_duration_ns}ns")
    if max_duration_ns is not None:
        conditions.append(f"traceDuration <= {max_duration_ns}ns")
    return "{" + " && ".join(conditions) + "}"


def metrics_params(args: Mapping[str, str], now_ns: int, instant: bool) -> MetricsParams:
    """The metrics parameters of a query string outside a request (the demo checks its own queries)."""
    try:
        metrics: Metrics = MetricsArgs().load(args)
    except ValidationError as exc:
        raise bad_parameter(exc.normalized_messages()) from exc  # type: ignore[no-untyped-call]
    return metrics.resolve(now_ns, instant)
