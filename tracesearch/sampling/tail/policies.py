"""Tail-sampling policies and the policy file: which policy, if any, keeps a whole trace.

A trace is kept by the first policy (in file order) that keeps it, and that policy's name is recorded
on its spans as ``sampling.policy``. Every policy but ``rate_limiting`` is a pure function of the
trace's spans (order does not matter) and of the file, so a replay after a crash decides the same
way; and each of them is monotone (a trace that grew by late spans is still kept), so a replay that
sees more of a trace never drops what was kept. ``rate_limiting`` counts kept traces per service and
second of the trace's own start time (event time, not the clock), so a replay in the same process
agrees; after a crash its counts start empty: see ``RateLimiting``.

The file is JSON::

    {"policies": [
      {"name": "errors", "type": "error"},
      {"name": "slow", "type": "latency", "threshold_ms": 500,
       "services": {"checkout": 200}, "operations": {"checkout": {"POST /pay": 100}}},
      {"name": "unusually-slow", "type": "latency_percentile", "percentile": 99, "min_calls": 100},
      {"name": "vip", "type": "traceql", "query": "{ span.customer.tier = \\"gold\\" }"},
      {"name": "sample", "type": "probabilistic", "percentage": 10},
      {"name": "floor", "type": "rate_limiting", "traces_per_second": 2}
    ]}
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tracesearch.model import Span, StatusCode
from tracesearch.query.errors import InvalidQuery
from tracesearch.query.traceql import Query, TraceQLError, evaluate
from tracesearch.query.traceql.bounded import parse_bounded

POLICY_ATTRIBUTE = "sampling.policy"
MAX_RATE_BUCKETS = 100_000  # (tenant, service, second) counters kept by a rate-limiting policy at most
_MS = 1_000_000


class PolicyError(ValueError):
    """The policy file cannot be used; the message says where."""


@dataclass(frozen=True, slots=True)
class Decision:
    keep: bool
    policy: str = ""  # the policy that kept the trace; "" when dropped

    @property
    def label(self) -> str:
        return self.policy if self.keep else "dropped"


DROP = Decision(False)


class Trace:
    """The spans of one trace as a policy sees them, in a fixed order (start, span id) so that no
    decision depends on the order the spans arrived in."""

    __slots__ = ("_root", "spans", "tenant", "trace_id")

    def __init__(self, trace_id: str, spans: Sequence[Span], tenant: str | None = None):
        self.trace_id = trace_id
        self.tenant = tenant
        self.spans = sorted(spans, key=lambda s: (s.start_ns, s.span_id))
        self._root: Span | None = None

    @property
    def duration_ns(self) -> int:
        return max(s.end_ns for s in self.spans) - min(s.start_ns for s in self.spans)

    @property
    def root(self) -> Span:
        """The span without a parent (the earliest one when there are several or none)."""
        if self._root is None:
            self._root = next((s for s in self.spans if not s.parent_span_id), self.spans[0])
        return self._root


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def keeps(self, trace: Trace) -> bool: ...


@dataclass(frozen=True, slots=True)
class Errors:
    """Keep a trace with any span whose status is error."""

    name: str

    def keeps(self, trace: Trace) -> bool:
        return any(s.status_code == StatusCode.ERROR for s in trace.spans)


@dataclass(frozen=True, slots=True)
class Latency:
    """Keep a trace longer than ``threshold_ns`` end to end, or with a span of a listed service
    (``per_service``) or service and span name (``per_operation``) longer than its threshold."""

    name: str
    threshold_ns: int | None = None
    per_service: Mapping[str, int] = field(default_factory=dict)
    per_operation: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def keeps(self, trace: Trace) -> bool:
        if self.threshold_ns is not None and trace.duration_ns > self.threshold_ns:
            return True
        if not self.per_service and not self.per_operation:
            return False
        for span in trace.spans:
            service = span.resource.service_name
            limit = self.per_operation.get((service, span.name), self.per_service.get(service))
            if limit is not None and span.duration_ns > limit:
                return True
        return False


class PercentileSource(Protocol):
    def threshold_ns(
        self, operation: tuple[str, str], q: float, min_calls: int, tenant: str | None = None
    ) -> int | None: ...


@dataclass(frozen=True, slots=True)
class LatencyPercentile:
    """Keep a trace with a span slower than its operation's observed ``q``-quantile (service and span
    name, from the span metrics of the last hour; operations with fewer than ``min_calls`` calls there
    are not judged). The figures move with the traffic, so unlike the pure policies a replay long after
    a crash may judge a trace against another p99 than the first time."""

    name: str
    q: float
    min_calls: int
    source: PercentileSource

    def keeps(self, trace: Trace) -> bool:
        for span in trace.spans:
            operation = (span.resource.service_name, span.name)
            limit = self.source.threshold_ns(operation, self.q, self.min_calls, trace.tenant)
            if limit is not None and span.duration_ns > limit:
                return True
        return False


@dataclass(frozen=True, slots=True)
class TraceQL:
    """Keep a trace that the TraceQL query matches (Tempo's semantics, the search's evaluator)."""

    name: str
    query: Query

    def keeps(self, trace: Trace) -> bool:
        return bool(evaluate(self.query, trace.spans))


def trace_fraction(trace_id: str, salt: str = "") -> float:
    """A number in [0, 1) from the trace id alone: every process, and every replay, gets the same."""
    digest = hashlib.blake2b(f"{salt}{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class Probabilistic:
    """Keep ``percentage`` % of traces, chosen by a hash of the trace id (not by chance)."""

    name: str
    percentage: float
    salt: str = ""

    def keeps(self, trace: Trace) -> bool:
        return trace_fraction(trace.trace_id, self.salt) * 100 < self.percentage


class RateLimiting:
    """Keep up to ``traces_per_second`` traces per tenant, service (the root span's) and second of the
    trace's start, counting the traces this policy kept (one tenant's traffic takes no other's places).

    Seconds are the trace's own (event time), not the clock, so replaying the same records in the
    same process decides the same way. What a replay may change: after a crash the counts start
    empty, so in the seconds replayed a second set of up to ``traces_per_second`` traces per service
    may be kept (earlier ones stay stored), and a trace this policy had kept but not yet written may
    then lose its place to another one; the same holds when two ingesters share a service's traces
    (each keeps up to the limit)."""

    def __init__(self, name: str, traces_per_second: float):
        self.name = name
        self.traces_per_second = traces_per_second
        self._kept: OrderedDict[tuple[str | None, str, int], int] = OrderedDict()

    def keeps(self, trace: Trace) -> bool:
        root = trace.root
        bucket = (trace.tenant, root.resource.service_name, root.start_ns // 1_000_000_000)
        kept = self._kept.get(bucket, 0)
        if kept >= self.traces_per_second:
            return False
        self._kept[bucket] = kept + 1
        if len(self._kept) > MAX_RATE_BUCKETS:
            self._kept.popitem(last=False)
        return True


class Decider:
    """The ordered policies of one file."""

    def __init__(self, policies: Sequence[Policy]):
        self.policies = list(policies)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.policies]

    def decide(self, trace: Trace) -> Decision:
        for policy in self.policies:
            if policy.keeps(trace):
                return Decision(True, policy.name)
        return DROP


# -- the file


def load_policy_file(path: str, percentiles: PercentileSource | None = None) -> Decider:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path} is not JSON: {exc}") from None
    return parse_policies(doc, percentiles)


def parse_policies(doc: Any, percentiles: PercentileSource | None = None) -> Decider:
    if not isinstance(doc, dict) or not isinstance(doc.get("policies"), list) or not doc["policies"]:
        raise PolicyError('expected {"policies": [...]} with at least one policy')
    policies: list[Policy] = []
    for i, item in enumerate(doc["policies"]):
        where = f"policies[{i}]"
        if not isinstance(item, dict):
            raise PolicyError(f"{where}: expected an object")
        name = item.get("name")
        if not isinstance(name, str) or not name or name == "dropped":
            raise PolicyError(f"{where}: needs a non-empty \"name\" (not 'dropped')")
        if name in {p.name for p in policies}:
            raise PolicyError(f"{where}: the name {name!r} is used twice")
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in _KEYS:
            raise PolicyError(f"{where} ({name}): type must be one of {', '.join(sorted(_KEYS))}, not {kind!r}")
        extra = set(item) - {"name", "type"} - _KEYS[kind]
        if extra:
            raise PolicyError(f"{where} ({name}): unknown key(s) {', '.join(sorted(extra))}")
        if kind == "latency_percentile":
            policies.append(_latency_percentile(name, item, f"{where} ({name})", percentiles))
        else:
            policies.append(_BUILDERS[kind](name, item, f"{where} ({name})"))
    return Decider(policies)


def _errors(name: str, item: dict[str, Any], where: str) -> Policy:
    return Errors(name)


def _number(value: Any, where: str, key: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise PolicyError(f"{where}: {key} must be a number of at least {minimum:g}, not {value!r}")
    return float(value)


def _latency(name: str, item: dict[str, Any], where: str) -> Policy:
    threshold = item.get("threshold_ms")
    threshold_ns = None if threshold is None else int(_number(threshold, where, "threshold_ms") * _MS)
    services = item.get("services", {})
    operations = item.get("operations", {})
    if not isinstance(services, dict) or not isinstance(operations, dict):
        raise PolicyError(f"{where}: services and operations must be objects")
    per_service = {s: int(_number(v, where, f"services.{s}") * _MS) for s, v in services.items()}
    per_operation: dict[tuple[str, str], int] = {}
    for service, ops in operations.items():
        if not isinstance(ops, dict):
            raise PolicyError(f'{where}: operations.{service} must be an object {{"span name": ms}}')
        for op, v in ops.items():
            per_operation[(service, op)] = int(_number(v, where, f"operations.{service}.{op}") * _MS)
    if threshold_ns is None and not per_service and not per_operation:
        raise PolicyError(f"{where}: set threshold_ms, services or operations")
    return Latency(name, threshold_ns, per_service, per_operation)


def _latency_percentile(name: str, item: dict[str, Any], where: str, source: PercentileSource | None) -> Policy:
    if source is None:
        raise PolicyError(f"{where}: needs the span metrics (TRACESEARCH_SERVICEGRAPH_ENABLED=true)")
    percentile = _number(item.get("percentile", 99), where, "percentile")
    if not 0 < percentile < 100:
        raise PolicyError(f"{where}: percentile must be between 0 and 100, not {percentile:g}")
    min_calls = int(_number(item.get("min_calls", 100), where, "min_calls", 1))
    return LatencyPercentile(name, percentile / 100, min_calls, source)


def _traceql(name: str, item: dict[str, Any], where: str) -> Policy:
    text = item.get("query")
    if not isinstance(text, str):
        raise PolicyError(f"{where}: query must be a TraceQL string")
    try:
        query = parse_bounded(text)
    except (TraceQLError, InvalidQuery) as exc:
        raise PolicyError(f"{where}: {exc}") from None
    if query.metrics is not None:
        raise PolicyError(f"{where}: a metrics query cannot choose traces; use a spanset filter")
    return TraceQL(name, query)


def _probabilistic(name: str, item: dict[str, Any], where: str) -> Policy:
    percentage = _number(item.get("percentage"), where, "percentage")
    if percentage > 100:
        raise PolicyError(f"{where}: percentage must be at most 100")
    salt = item.get("salt", "")
    if not isinstance(salt, str):
        raise PolicyError(f"{where}: salt must be a string")
    return Probabilistic(name, percentage, salt)


def _rate_limiting(name: str, item: dict[str, Any], where: str) -> Policy:
    return RateLimiting(name, _number(item.get("traces_per_second"), where, "traces_per_second", 1.0))


_BUILDERS: dict[str, Callable[[str, dict[str, Any], str], Policy]] = {
    "error": _errors,
    "latency": _latency,
    "traceql": _traceql,
    "probabilistic": _probabilistic,
    "rate_limiting": _rate_limiting,
}
_KEYS: dict[str, set[str]] = {
    "error": set(),
    "latency": {"threshold_ms", "services", "operations"},
    "latency_percentile": {"percentile", "min_calls"},
    "traceql": {"query"},
    "probabilistic": {"percentage", "salt"},
    "rate_limiting": {"traces_per_second"},
}
