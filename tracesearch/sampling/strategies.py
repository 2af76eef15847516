"""Jaeger's static sampling strategies: the ``strategies.json`` file, and the ``SamplingStrategyResponse``
a remote sampler is served.

The file format is Jaeger's (``internal/sampling/samplingstrategy/file/strategy.go``)::

    {"default_strategy": {"type": "probabilistic", "param": 0.5,
                          "operation_strategies": [{"operation": "/health", "type": "probabilistic", "param": 0}]},
     "service_strategies": [{"service": "shop", "type": "ratelimiting", "param": 5,
                             "operation_strategies": [...]}]}

The answer is ``jaeger.api_v2.SamplingStrategyResponse`` (``proto/api_v2/sampling.proto``) as Jaeger's
HTTP handler writes it: protobuf JSON with the enum by name, defaults emitted, absent strategies left
out; ``go.opentelemetry.io/contrib/samplers/jaegerremote`` reads it with gogo's ``jsonpb``, which
refuses unknown fields, so nothing else may be added.

Which strategy a service gets follows Jaeger's static provider (``file/provider.go``, ``parseStrategies``):

- a service's per-operation strategies default to the service's probability (when it is probabilistic);
- the default strategy's operation strategies apply to every listed service too: a service without
  its own gets a copy of them (with its own probability as the default when it is probabilistic), a
  service with its own gets the default's for the operations it does not name;
- an unlisted service gets the default strategy.

Where tracesearch differs, it is stricter, so that a mistake is refused with the field named instead
of served as something else (Jaeger logs a warning and serves its default probability, 0.001, for an
unknown or missing ``type``; skips a rate-limiting operation strategy; truncates a fractional rate to
an integer; lets the last of two entries for one service win; ignores unknown fields): all of these
are refused here. Jaeger's ``--sampling.default-sampling-probability`` (used where the file says no
probability) is ``TRACESEARCH_SAMPLING_DEFAULT_PROBABILITY``, 1.0 by default: keep everything unless
the file says otherwise, as tracesearch did before sampling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROBABILISTIC = "probabilistic"
RATE_LIMITING = "ratelimiting"
TYPES = (PROBABILISTIC, RATE_LIMITING)
# RateLimitingSamplingStrategy.maxTracesPerSecond is an int32 in the proto.
MAX_TRACES_PER_SECOND = 2**31 - 1

_FILE_FIELDS = frozenset({"default_strategy", "service_strategies"})
_DEFAULT_FIELDS = frozenset({"type", "param", "operation_strategies"})
_SERVICE_FIELDS = _DEFAULT_FIELDS | {"service"}
_OPERATION_FIELDS = frozenset({"operation", "type", "param"})


class StrategiesError(ValueError):
    """The file is not valid; ``path`` names the wrong field (``service_strategies[2].param``)."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Strategy:
    type: str
    # probabilistic: the probability; ratelimiting: traces per second (a whole number).
    param: float


@dataclass(frozen=True)
class OperationStrategy:
    operation: str
    probability: float


@dataclass(frozen=True)
class ServiceStrategy:
    strategy: Strategy
    operations: tuple[OperationStrategy, ...] = ()


@dataclass(frozen=True)
class Strategies:
    """A valid file: its strategies, and its JSON document as it was given (what the admin API shows)."""

    default: ServiceStrategy | None = None
    services: Mapping[str, ServiceStrategy] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict)


# -- the answer


@dataclass(frozen=True)
class OperationSampling:
    """``PerOperationSamplingStrategies``."""

    default_probability: float
    operations: tuple[OperationStrategy, ...] = ()
    lower_bound_tps: float = 0.0
    upper_bound_tps: float = 0.0


@dataclass(frozen=True)
class StrategyResponse:
    """``SamplingStrategyResponse``: one service's strategy as a remote sampler is served it."""

    type: str
    probability: float | None = None
    max_traces_per_second: int | None = None
    operation_sampling: OperationSampling | None = None

    def to_json(self) -> dict[str, Any]:
        """Jaeger's JSON, field for field (proto order, enum by name, defaults emitted, nulls left out)."""
        answer: dict[str, Any] = {"strategyType": "RATE_LIMITING" if self.type == RATE_LIMITING else "PROBABILISTIC"}
        if self.probability is not None:
            answer["probabilisticSampling"] = {"samplingRate": self.probability}
        if self.max_traces_per_second is not None:
            answer["rateLimitingSampling"] = {"maxTracesPerSecond": self.max_traces_per_second}
        if self.operation_sampling is not None:
            ops = self.operation_sampling
            answer["operationSampling"] = {
                "defaultSamplingProbability": ops.default_probability,
                "defaultLowerBoundTracesPerSecond": ops.lower_bound_tps,
                "perOperationStrategies": [
                    {"operation": op.operation, "probabilisticSampling": {"samplingRate": op.probability}}
                    for op in ops.operations
                ],
                "defaultUpperBoundTracesPerSecond": ops.upper_bound_tps,
            }
        return answer


def probabilistic(probability: float) -> StrategyResponse:
    return StrategyResponse(PROBABILISTIC, probability=probability)


def _response(strategy: Strategy) -> StrategyResponse:
    if strategy.type == RATE_LIMITING:
        return StrategyResponse(RATE_LIMITING, max_traces_per_second=int(strategy.param))
    return probabilistic(strategy.param)


def _own_response(entry: ServiceStrategy, default_probability: float) -> StrategyResponse:
    """``parseServiceStrategies``: the entry's strategy, with its operations when it has some."""
    response = _response(entry.strategy)
    if not entry.operations:
        return response
    if entry.strategy.type == PROBABILISTIC:
        default_probability = entry.strategy.param
    return _with_operations(response, OperationSampling(default_probability, entry.operations))


def _with_operations(response: StrategyResponse, ops: OperationSampling) -> StrategyResponse:
    return StrategyResponse(response.type, response.probability, response.max_traces_per_second, ops)


def _merge(
    own: tuple[OperationStrategy, ...], inherited: tuple[OperationStrategy, ...]
) -> tuple[OperationStrategy, ...]:
    """The service's operations first, then the default's it does not name (Jaeger's order)."""
    named = {op.operation for op in own}
    return own + tuple(op for op in inherited if op.operation not in named)


@dataclass(frozen=True)
class StaticStrategies:
    """The responses of one file, computed once: per listed service, and for everyone else."""

    default: StrategyResponse
    services: Mapping[str, StrategyResponse]

    def get(self, service: str) -> StrategyResponse | None:
        """The listed service's strategy, None for a service the file does not name."""
        return self.services.get(service)


def build(strategies: Strategies | None, default_probability: float) -> StaticStrategies:
    """Jaeger's ``parseStrategies``: every listed service's response, and the default one."""
    fallback = probabilistic(default_probability)
    if strategies is None:
        return StaticStrategies(fallback, {})
    default = fallback if strategies.default is None else _own_response(strategies.default, default_probability)
    inherited = default.operation_sampling
    services: dict[str, StrategyResponse] = {}
    for name, entry in strategies.services.items():
        response = _own_response(entry, default_probability)
        if inherited is not None:
            response = _inherit(response, inherited)
        services[name] = response
    return StaticStrategies(default, services)


def _inherit(response: StrategyResponse, inherited: OperationSampling) -> StrategyResponse:
    own = response.operation_sampling
    if own is None:
        # A copy of the default's, with the service's own probability as the default when it has one.
        probability = inherited.default_probability if response.probability is None else response.probability
        return _with_operations(response, OperationSampling(probability, inherited.operations))
    merged = OperationSampling(own.default_probability, _merge(own.operations, inherited.operations))
    return _with_operations(response, merged)


# -- parsing and validation


def parse(text: str | bytes) -> Strategies:
    """A ``strategies.json`` document, validated; ``StrategiesError`` names the first wrong field."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StrategiesError("", f"not JSON: {exc}") from None
    return from_document(document)


def from_document(document: Any) -> Strategies:
    top = _object(document, "", _FILE_FIELDS)
    default = None
    if top.get("default_strategy") is not None:
        default = _service_strategy(
            _object(top["default_strategy"], "default_strategy", _DEFAULT_FIELDS), "default_strategy"
        )
    services: dict[str, ServiceStrategy] = {}
    for index, item in enumerate(_list(top.get("service_strategies"), "service_strategies")):
        path = f"service_strategies[{index}]"
        entry = _object(item, path, _SERVICE_FIELDS)
        name = _name(entry, "service", path)
        if name in services:
            raise StrategiesError(f"{path}.service", f"{name!r} is listed twice")
        services[name] = _service_strategy(entry, path)
    return Strategies(default, services, document)


def _service_strategy(entry: Mapping[str, Any], path: str) -> ServiceStrategy:
    strategy = _strategy(entry, path)
    operations: list[OperationStrategy] = []
    seen: set[str] = set()
    for index, item in enumerate(_list(entry.get("operation_strategies"), f"{path}.operation_strategies")):
        op_path = f"{path}.operation_strategies[{index}]"
        op = _object(item, op_path, _OPERATION_FIELDS)
        name = _name(op, "operation", op_path)
        if name in seen:
            raise StrategiesError(f"{op_path}.operation", f"{name!r} is listed twice")
        seen.add(name)
        op_strategy = _strategy(op, op_path)
        if op_strategy.type != PROBABILISTIC:
            # The proto's OperationSamplingStrategy has a probability only; Jaeger skips these with a warning.
            raise StrategiesError(f"{op_path}.type", "must be probabilistic: per-operation sampling has no rate limit")
        operations.append(OperationStrategy(name, op_strategy.param))
    return ServiceStrategy(strategy, tuple(operations))


def _strategy(entry: Mapping[str, Any], path: str) -> Strategy:
    kind = entry.get("type")
    if kind not in TYPES:
        expected = " or ".join(map(repr, TYPES))
        problem = f"is required: {expected}" if kind is None else f"must be {expected}, not {kind!r}"
        raise StrategiesError(f"{path}.type", problem)
    param = entry.get("param")
    if isinstance(param, bool) or not isinstance(param, int | float) or not math.isfinite(param):
        raise StrategiesError(f"{path}.param", "is required and must be a number")
    if kind == PROBABILISTIC and not 0 <= param <= 1:
        raise StrategiesError(f"{path}.param", "must be within [0, 1] (a probability)")
    if kind == RATE_LIMITING and (param != int(param) or not 0 <= param <= MAX_TRACES_PER_SECOND):
        raise StrategiesError(
            f"{path}.param", f"must be a whole number of traces per second within [0, {MAX_TRACES_PER_SECOND}]"
        )
    return Strategy(kind, float(param))


def _object(value: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise StrategiesError(path, "must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise StrategiesError(where, f"unknown field (expected {', '.join(sorted(allowed))})")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise StrategiesError(path, "must be a JSON array")
    return value


def _name(entry: Mapping[str, Any], key: str, path: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise StrategiesError(f"{path}.{key}", "is required and must be a non-empty string")
    return value
