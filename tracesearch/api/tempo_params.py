"""Parameters of Tempo's search and metrics endpoints, checked and turned into one TraceQL query.

The legacy search parameters (``tags`` logfmt, ``minDuration``/``maxDuration``) are rewritten as
the TraceQL Tempo itself would run, so every search goes through one planner and one evaluator.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tracesearch.api.http_errors import BadRequest
from tracesearch.query.durations import parse_go_duration
from tracesearch.query.traceql import Query
from tracesearch.query.traceql.bounded import parse_bounded

NS_PER_S = 1_000_000_000
DEFAULT_LIMIT = 20
MAX_LIMIT = 1_000
DEFAULT_SPSS = 3
MAX_SPSS = 1_000
DEFAULT_STEP_POINTS = 100
MAX_POINTS = 11_000
MAX_NS = 2**63 - 1  # Elasticsearch longs; nanoseconds run out in 2262
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:/-]+")


@dataclass(frozen=True, slots=True)
class SearchParams:
    query: Query
    text: str
    start_ns: int
    end_ns: int
    limit: int
    spss: int


@dataclass(frozen=True, slots=True)
class MetricsParams:
    query: Query
    text: str
    start_ns: int
    end_ns: int
    step_ns: int
    instant: bool


def unix_ns(text: str, name: str) -> int:
    """Unix seconds (Tempo's unit), or nanoseconds, or RFC 3339, as the metrics endpoints accept."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * NS_PER_S)
        except ValueError:
            raise BadRequest(f"parameter {name!r}: {text!r} is not unix seconds or RFC 3339", field=name) from None
    if number != number or number < 0:
        raise BadRequest(f"parameter {name!r}: {text!r} is not a time", field=name)
    ns = int(number) if number > 1e15 else int(number * NS_PER_S)
    if ns >= MAX_NS:
        raise BadRequest(f"parameter {name!r}: {text!r} is after the year 2262", field=name)
    return ns


def positive_int(args: Mapping[str, str], name: str, default: int, most: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise BadRequest(f"invalid {name} {raw!r}: must be a positive integer", field=name)
    return min(int(raw), most)


def _range(args: Mapping[str, str], now_ns: int, lookback_s: float) -> tuple[int, int]:
    start, end = args.get("start") or "", args.get("end") or ""
    if bool(start) != bool(end):
        raise BadRequest("parameters 'start' and 'end' go together: send both or neither", field="start")
    if not start or (start == "0" and end == "0"):
        return now_ns - int(lookback_s * NS_PER_S), now_ns
    start_ns, end_ns = unix_ns(start, "start"), unix_ns(end, "end")
    if end_ns <= start_ns:
        raise BadRequest("parameter 'end' must be after 'start'", field="end")
    return start_ns, end_ns


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _logfmt(text: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise BadRequest(f"parameter 'tags': {exc}", field="tags") from exc
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise BadRequest(f"parameter 'tags': {word!r} is not key=value", field="tags")
        if any(k == key for k, _ in pairs):
            raise BadRequest(f"parameter 'tags': duplicate key {key!r}", field="tags")
        pairs.append((key, value))
    return pairs


def _duration(args: Mapping[str, str], name: str) -> int | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        return parse_go_duration(raw)
    except ValueError as exc:
        raise BadRequest(f"parameter {name!r}: {exc}", field=name) from exc


def _any_type_equals(name: str, value: str) -> str:
    """Legacy tags carry no type: ``503`` matches the string "503" and the number 503."""
    alternatives = [f"{name} = {_quote(value)}"]
    if re.fullmatch(r"-?\d+(\.\d+)?|true|false", value):
        alternatives.append(f"{name} = {value}")
    return alternatives[0] if len(alternatives) == 1 else "(" + " || ".join(alternatives) + ")"


def legacy_traceql(args: Mapping[str, str]) -> str:
    """``tags=k=v k2="a b"&minDuration=100ms`` as TraceQL. Tempo matches tag values as
    case-insensitive substrings; here they match exactly (``span.k``/``resource.k``), like Jaeger."""
    conditions = []
    for key, value in _logfmt(args.get("tags") or ""):
        name = key if _PLAIN_NAME.fullmatch(key) else _quote(key)
        conditions.append(_any_type_equals(f".{name}", value))
    low, high = _duration(args, "minDuration"), _duration(args, "maxDuration")
    if low is not None and high is not None and high < low:
        raise BadRequest("parameter 'maxDuration' must be greater than or equal to 'minDuration'", field="maxDuration")
    if low is not None:
        conditions.append(f"traceDuration >= {low}ns")
    if high is not None:
        conditions.append(f"traceDuration <= {high}ns")
    return "{" + " && ".join(conditions) + "}"


def search_params(args: Mapping[str, str], now_ns: int, lookback_s: float) -> SearchParams:
    text = (args.get("q") or "").strip()
    if text and args.get("tags"):
        raise BadRequest("can't specify tags and q", field="q")
    if not text:
        text = legacy_traceql(args)
    query = parse_bounded(text)
    if query.metrics is not None:
        raise BadRequest("a TraceQL metrics query goes to /api/metrics/query_range, not /api/search", field="q")
    start_ns, end_ns = _range(args, now_ns, lookback_s)
    limit = positive_int(args, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    spss = positive_int(args, "spss", DEFAULT_SPSS, MAX_SPSS)
    return SearchParams(query, text, start_ns, end_ns, limit, spss)


def metrics_params(args: Mapping[str, str], now_ns: int, instant: bool) -> MetricsParams:
    text = (args.get("q") or "").strip()
    if not text:
        raise BadRequest("parameter 'q' is required: a TraceQL metrics query such as '{} | rate()'", field="q")
    query = parse_bounded(text)
    if query.metrics is None:
        raise BadRequest(
            "not a metrics query: end it with | rate(), count_over_time(), quantile_over_time(duration, .95) "
            "or histogram_over_time(duration)",
            field="q",
        )
    since = _duration(args, "since")
    start_ns, end_ns = _range(args, now_ns, (since or 3600 * NS_PER_S) / NS_PER_S)
    step_ns = _duration(args, "step") or max((end_ns - start_ns) // DEFAULT_STEP_POINTS, NS_PER_S)
    if instant:
        step_ns = end_ns - start_ns
    if step_ns <= 0:
        raise BadRequest("parameter 'step' must be positive", field="step")
    if (end_ns - start_ns) // step_ns > MAX_POINTS:
        raise BadRequest(f"too many points: (end - start) / step must stay under {MAX_POINTS}", field="step")
    return MetricsParams(query, text, start_ns, end_ns, step_ns, instant)
