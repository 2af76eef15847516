"""Head sampling steered by tracesearch: Jaeger's remote-sampling strategies, followed by the Python SDK.

The service polls ``GET <endpoint>/api/sampling?service=<name>`` (the JSON Jaeger's collector serves,
which OpenTelemetry's jaegerremote samplers in Go, Java and JS read too) and samples root spans as the
strategy says: probabilistic, rate-limiting, or per operation (span name) with a guaranteed lower
bound of traces per second, as Jaeger's clients do. Children follow their parent (``ParentBased``),
so a trace is sampled whole. Sampled roots carry ``jaeger.sampler.type`` and ``jaeger.sampler.param``,
as OpenTelemetry Go's jaegerremote sampler sets them, so a backend can weigh sampled traffic back up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)

DEFAULT_POLLING_INTERVAL_S = 60.0
# Jaeger clients start at 0.001 until the first answer; tracesearch keeps everything by default,
# and a service that cannot reach it should not flood it either: keep Jaeger's choice.
DEFAULT_INITIAL_RATE = 0.001
MAX_OPERATIONS = 2000  # per-operation samplers kept, as Jaeger's clients bound them
_ID_MASK = (1 << 64) - 1
Fetch = Callable[[str], Mapping[str, Any]]


class _TokenBucket:
    """At most ``rate`` decisions per second on average, with a burst of max(rate, 1)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._clock = rate, clock
        self._capacity = max(rate, 1.0)
        self._tokens, self._last = self._capacity, clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def _probabilistic(trace_id: int, rate: float) -> bool:
    # The same test as TraceIdRatioBased: every process agrees on a trace from its id alone.
    return trace_id & _ID_MASK < round(max(0.0, min(rate, 1.0)) * (1 << 64))


Decide = Callable[[int, str], "tuple[bool, str, float]"]


@dataclass(frozen=True)
class Strategy:
    """One answer of the sampling endpoint, ready to decide. Swapped whole when a new one arrives."""

    kind: str  # "probabilistic", "ratelimiting" or "per_operation"
    rate: float = 1.0  # probability, or traces per second for "ratelimiting"
    operations: Mapping[str, float] = field(default_factory=dict)
    lower_bound_tps: float = 0.0
    _limiter: _TokenBucket | None = None
    _floors: dict[str, _TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, trace_id: int, operation: str) -> tuple[bool, str, float]:
        """(sampled, sampler.type, sampler.param) for a root span."""
        if self.kind == "ratelimiting":
            assert self._limiter is not None
            return self._limiter.take(), "ratelimiting", self.rate
        if self.kind == "probabilistic":
            return _probabilistic(trace_id, self.rate), "probabilistic", self.rate
        rate = self.operations.get(operation, self.rate)
        if _probabilistic(trace_id, rate):
            return True, "probabilistic", rate
        # The lower bound: even a rare operation yields a trace now and then.
        floor = self._floor(operation)
        return (floor is not None and floor.take()), "lowerbound", rate

    def _floor(self, operation: str) -> _TokenBucket | None:
        if self.lower_bound_tps <= 0:
            return None
        with self._lock:
            bucket = self._floors.get(operation)
            if bucket is None and len(self._floors) < MAX_OPERATIONS:
                bucket = self._floors[operation] = _TokenBucket(self.lower_bound_tps)
            return bucket


def probabilistic(rate: float) -> Strategy:
    return Strategy("probabilistic", rate)


def parse_strategy(answer: Mapping[str, Any]) -> Strategy:
    """Jaeger's SamplingStrategyResponse JSON (enum names or numbers, camelCase or snake_case)."""

    def get(obj: Mapping[str, Any], camel: str) -> Any:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
        return obj.get(camel, obj.get(snake))

    per_operation = get(answer, "operationSampling")
    if per_operation:
        operations = {
            str(item["operation"]): float(get(get(item, "probabilisticSampling"), "samplingRate"))
            for item in get(per_operation, "perOperationStrategies") or []
        }
        return Strategy(
            "per_operation",
            float(get(per_operation, "defaultSamplingProbability") or 0.0),
            operations,
            float(get(per_operation, "defaultLowerBoundTracesPerSecond") or 0.0),
        )
    kind = get(answer, "strategyType")
    if kind in ("RATE_LIMITING", 1):
        tps = float(get(get(answer, "rateLimitingSampling"), "maxTracesPerSecond"))
        return Strategy("ratelimiting", tps, _limiter=_TokenBucket(tps))
    if kind in ("PROBABILISTIC", 0, None):
        return probabilistic(float(get(get(answer, "probabilisticSampling"), "samplingRate")))
    raise ValueError(f"unknown strategyType {kind!r}")


def http_fetch(url: str, timeout_s: float = 5.0) -> Mapping[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:
        loaded: Mapping[str, Any] = json.load(answer)
        return loaded


class JaegerRemoteSampler(Sampler):
    """Root-span sampler following tracesearch's strategy for one service (wrap it in ParentBased)."""

    def __init__(
        self,
        service: str,
        endpoint: str,
        *,
        polling_interval_s: float = DEFAULT_POLLING_INTERVAL_S,
        initial_rate: float = DEFAULT_INITIAL_RATE,
        fetch: Fetch = http_fetch,
        poll: bool = True,
    ) -> None:
        query = urllib.parse.urlencode({"service": service})
        self._url = f"{endpoint.rstrip('/')}/api/sampling?{query}"
        self._service, self._fetch = service, fetch
        self._strategy = probabilistic(initial_rate)
        self._failing = False
        self._stop = threading.Event()
        if poll:
            threading.Thread(target=self._poll, args=(polling_interval_s,), name="jaeger-remote", daemon=True).start()

    @property
    def strategy(self) -> Strategy:
        return self._strategy

    def refresh(self) -> bool:
        """Fetch the strategy once; on failure keep the last one (and say so once, not every poll)."""
        try:
            self._strategy = parse_strategy(self._fetch(self._url))
        except Exception as error:  # network, HTTP or shape: all mean "keep what we have"
            if not self._failing:
                log.warning("sampling strategy from %s unavailable, keeping the last one: %s", self._url, error)
            self._failing = True
            return False
        self._failing = False
        return True

    def _poll(self, interval_s: float) -> None:
        while True:
            self.refresh()
            if self._stop.wait(interval_s):
                return

    def close(self) -> None:
        self._stop.set()

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampled, sampler_type, param = self._strategy.decide(trace_id, name)
        state = get_current_span(parent_context).get_span_context().trace_state
        if not sampled:
            return SamplingResult(Decision.DROP, None, state)
        tags: dict[str, str | float] = {"jaeger.sampler.type": sampler_type, "jaeger.sampler.param": param}
        return SamplingResult(Decision.RECORD_AND_SAMPLE, {**(attributes or {}), **tags}, state)

    def get_description(self) -> str:
        return f"JaegerRemoteSampler{{{self._url}}}"


def parse_arg(arg: str | None) -> dict[str, str]:
    """OTEL_TRACES_SAMPLER_ARG in the form the Java agent documents for jaeger_remote:
    ``endpoint=http://tracesearch:4318,pollingIntervalMs=5000,initialSamplingRate=0.25``."""
    pairs = (item.split("=", 1) for item in (arg or "").split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def remote_sampler(service: str, endpoint: str, arg: str | None = None) -> Sampler:
    """ParentBased(JaegerRemoteSampler): what setup() and the OTEL_TRACES_SAMPLER entry points install."""
    options = parse_arg(arg)
    root = JaegerRemoteSampler(
        service,
        options.get("endpoint", endpoint),
        polling_interval_s=float(options.get("pollingIntervalMs", DEFAULT_POLLING_INTERVAL_S * 1000)) / 1000,
        initial_rate=float(options.get("initialSamplingRate", DEFAULT_INITIAL_RATE)),
    )
    return ParentBased(root=root)


def _env_service_and_endpoint() -> tuple[str, str]:
    import os

    service = os.environ.get("OTEL_SERVICE_NAME") or "unknown_service"
    return service, os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"


def parentbased_jaeger_remote(arg: str | None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=parentbased_jaeger_remote`` (the name the Java agent uses)."""
    service, endpoint = _env_service_and_endpoint()
    return remote_sampler(service, endpoint, arg)


def jaeger_remote(arg: str | None) -> Sampler:
    """``OTEL_TRACES_SAMPLER=jaeger_remote``: the strategy decides every span, parents ignored."""
    service, endpoint = _env_service_and_endpoint()
    root = remote_sampler(service, endpoint, arg)
    assert isinstance(root, ParentBased)
    return root._root
