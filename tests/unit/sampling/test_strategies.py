"""Jaeger's strategies.json: what each service is served (Jaeger's static provider semantics, checked on
Jaeger's own fixtures), the exact JSON a jaegerremote client parses, and refusals that name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tracesearch.sampling.strategies import StrategiesError, build, parse

# Jaeger's internal/sampling/samplingstrategy/file/fixtures/service_no_per_operation.json
SERVICE_NO_PER_OPERATION = {
    "service_strategies": [
        {"service": "ServiceA", "type": "probabilistic", "param": 1.0},
        {"service": "ServiceB", "type": "ratelimiting", "param": 3},
    ],
    "default_strategy": {
        "type": "probabilistic",
        "param": 0.2,
        "operation_strategies": [{"operation": "/health", "type": "probabilistic", "param": 0.1}],
    },
}
# Jaeger's fixtures/operation_strategies.json without its two rate-limiting operation strategies
# (Jaeger skips them with a warning; we refuse them, see test_refusals).
OPERATION_STRATEGIES = {
    "default_strategy": {
        "type": "probabilistic",
        "param": 0.5,
        "operation_strategies": [
            {"operation": "op0", "type": "probabilistic", "param": 0.2},
            {"operation": "op6", "type": "probabilistic", "param": 0},
            {"operation": "op7", "type": "probabilistic", "param": 1},
        ],
    },
    "service_strategies": [
        {
            "service": "foo",
            "type": "probabilistic",
            "param": 0.8,
            "operation_strategies": [
                {"operation": "op6", "type": "probabilistic", "param": 0.5},
                {"operation": "op1", "type": "probabilistic", "param": 0.2},
            ],
        },
        {
            "service": "bar",
            "type": "ratelimiting",
            "param": 5,
            "operation_strategies": [
                {"operation": "op3", "type": "probabilistic", "param": 0.3},
                {"operation": "op5", "type": "probabilistic", "param": 0.4},
            ],
        },
    ],
}


def served(document: dict[str, Any], service: str, default_probability: float = 1.0) -> dict[str, Any]:
    static = build(parse(json.dumps(document)), default_probability)
    return (static.get(service) or static.default).to_json()


def ops(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"operation": name, "probabilisticSampling": {"samplingRate": p}} for name, p in pairs]


def per_operation(default: float, *pairs: tuple[str, float]) -> dict[str, Any]:
    return {
        "defaultSamplingProbability": default,
        "defaultLowerBoundTracesPerSecond": 0.0,
        "perOperationStrategies": ops(*pairs),
        "defaultUpperBoundTracesPerSecond": 0.0,
    }


def test_a_service_without_operations_inherits_the_defaults_with_its_own_probability() -> None:
    # Jaeger's snapshot TestServiceNoPerOperationStrategies_ServiceA.json, in jsonpb's form.
    assert served(SERVICE_NO_PER_OPERATION, "ServiceA") == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": 1.0},
        "operationSampling": per_operation(1.0, ("/health", 0.1)),
    }


def test_a_rate_limited_service_inherits_the_default_operations_and_probability() -> None:
    # TestServiceNoPerOperationStrategies_ServiceB.json: the rate limit stays, the default's probability is used.
    assert served(SERVICE_NO_PER_OPERATION, "ServiceB") == {
        "strategyType": "RATE_LIMITING",
        "rateLimitingSampling": {"maxTracesPerSecond": 3},
        "operationSampling": per_operation(0.2, ("/health", 0.1)),
    }


def test_own_operations_come_first_then_the_defaults_it_does_not_name() -> None:
    # TestPerOperationSamplingStrategies: foo has op6, op1 of its own, then op0 and op7 of the default.
    assert served(OPERATION_STRATEGIES, "foo")["operationSampling"] == per_operation(
        0.8, ("op6", 0.5), ("op1", 0.2), ("op0", 0.2), ("op7", 1.0)
    )


def test_a_rate_limited_service_with_operations_defaults_to_the_configured_probability() -> None:
    # Jaeger uses --sampling.default-sampling-probability (0.001) here; ours is the setting (1.0 by default).
    answer = served(OPERATION_STRATEGIES, "bar", default_probability=0.001)
    assert answer["rateLimitingSampling"] == {"maxTracesPerSecond": 5}
    assert answer["operationSampling"] == per_operation(
        0.001, ("op3", 0.3), ("op5", 0.4), ("op0", 0.2), ("op6", 0.0), ("op7", 1.0)
    )


def test_an_unlisted_service_gets_the_default_strategy() -> None:
    assert served(OPERATION_STRATEGIES, "unknown") == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": 0.5},
        "operationSampling": per_operation(0.5, ("op0", 0.2), ("op6", 0.0), ("op7", 1.0)),
    }


def test_a_file_without_default_strategy_serves_the_default_probability() -> None:
    document = {"service_strategies": [{"service": "a", "type": "ratelimiting", "param": 2}]}
    assert served(document, "b", default_probability=0.25) == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": 0.25},
    }
    assert served(document, "a") == {"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 2}}


def test_jaegers_own_example_file_and_an_empty_one_parse() -> None:
    # cmd/jaeger/sampling-strategies.json, but bar's 0.9 traces/s (Jaeger truncates it to 0) made whole.
    jaeger = {
        "default_strategy": {"type": "probabilistic", "param": 1},
        "service_strategies": [
            {"service": "foo", "type": "probabilistic", "param": 0.8},
            {"service": "bar", "type": "ratelimiting", "param": 1},
        ],
    }
    assert served(jaeger, "foo") == {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.8}}
    assert served({}, "any", default_probability=1.0)["probabilisticSampling"] == {"samplingRate": 1.0}
    assert served({"service_strategies": None, "default_strategy": None}, "x")["strategyType"] == "PROBABILISTIC"


def _service(**fields: Any) -> dict[str, Any]:
    return {"service": "a", "type": "probabilistic", "param": 0.5, **fields}


REFUSALS = [
    ("[]", "", "must be a JSON object"),
    ("{", "", "not JSON"),
    ({"service_strategy": []}, "service_strategy", "unknown field"),
    ({"service_strategies": {}}, "service_strategies", "must be a JSON array"),
    (
        {"service_strategies": [_service(), _service(service="b"), _service(service="c", param=1.5)]},
        "service_strategies[2].param",
        "must be within [0, 1]",
    ),
    ({"service_strategies": [_service(param=-0.1)]}, "service_strategies[0].param", "must be within [0, 1]"),
    ({"service_strategies": [_service(param="0.5")]}, "service_strategies[0].param", "must be a number"),
    ({"service_strategies": [_service(param=True)]}, "service_strategies[0].param", "must be a number"),
    ({"service_strategies": [{"service": "a", "param": 0.5}]}, "service_strategies[0].type", "is required"),
    ({"service_strategies": [_service(type="const")]}, "service_strategies[0].type", "not 'const'"),
    ({"service_strategies": [_service(service="")]}, "service_strategies[0].service", "non-empty string"),
    ({"service_strategies": [_service(), _service()]}, "service_strategies[1].service", "listed twice"),
    ({"service_strategies": [_service(type="ratelimiting", param=0.9)]}, "service_strategies[0].param", "whole number"),
    (
        {"service_strategies": [_service(type="ratelimiting", param=2**31)]},
        "service_strategies[0].param",
        "whole number",
    ),
    (
        {"default_strategy": {"type": "probabilistic", "param": 1, "service": "x"}},
        "default_strategy.service",
        "unknown field",
    ),
    (
        {
            "default_strategy": {
                "type": "probabilistic",
                "param": 1,
                "operation_strategies": [{"operation": "op", "type": "ratelimiting", "param": 1}],
            }
        },
        "default_strategy.operation_strategies[0].type",
        "must be probabilistic",
    ),
    (
        {
            "default_strategy": {
                "type": "probabilistic",
                "param": 1,
                "operation_strategies": [{"operation": "op", "type": "probabilistic", "param": 2}],
            }
        },
        "default_strategy.operation_strategies[0].param",
        "must be within [0, 1]",
    ),
    (
        {"service_strategies": [_service(operation_strategies=[{"type": "probabilistic", "param": 1}])]},
        "service_strategies[0].operation_strategies[0].operation",
        "is required",
    ),
    (
        {
            "service_strategies": [
                _service(
                    operation_strategies=[
                        {"operation": "x", "type": "probabilistic", "param": 1},
                        {"operation": "x", "type": "probabilistic", "param": 0},
                    ]
                )
            ]
        },
        "service_strategies[0].operation_strategies[1].operation",
        "listed twice",
    ),
]


@pytest.mark.parametrize(("document", "path", "problem"), REFUSALS)
def test_refusals_name_the_wrong_field(document: Any, path: str, problem: str) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(StrategiesError) as raised:
        parse(text)
    assert raised.value.path == path
    assert problem in str(raised.value)
    assert str(raised.value).startswith(f"{path}: " if path else problem[:3])


def test_the_message_reads_as_the_path_then_the_problem() -> None:
    document = {"service_strategies": [_service(), _service(service="b"), _service(service="c", param=2)]}
    with pytest.raises(StrategiesError, match=r"^service_strategies\[2\]\.param: must be within \[0, 1\]"):
        parse(json.dumps(document))
