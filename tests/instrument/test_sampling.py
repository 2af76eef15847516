"""The remote sampler follows the strategy it is served: probabilistic, rate-limited, per operation."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased

from tracesearch.instrument.sampling import JaegerRemoteSampler, parse_arg, parse_strategy

PROBABILISTIC = {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.25}}
RATE_LIMITING = {"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 2}}
PER_OPERATION: dict[str, Any] = {
    "strategyType": "PROBABILISTIC",
    "probabilisticSampling": {"samplingRate": 0.5},
    "operationSampling": {
        "defaultSamplingProbability": 0.5,
        "defaultLowerBoundTracesPerSecond": 0.0,
        "perOperationStrategies": [
            {"operation": "GET /health", "probabilisticSampling": {"samplingRate": 0.0}},
            {"operation": "POST /checkout", "probabilisticSampling": {"samplingRate": 1.0}},
        ],
    },
}


def sampler_serving(answer: Mapping[str, Any]) -> JaegerRemoteSampler:
    sampler = JaegerRemoteSampler("shop", "http://tracesearch:4318", fetch=lambda url: answer, poll=False)
    assert sampler.refresh()
    return sampler


def share_sampled(sampler: JaegerRemoteSampler, name: str = "GET /", count: int = 20_000) -> float:
    rng = random.Random(5)
    kept = sum(
        sampler.should_sample(None, rng.getrandbits(128), name).decision is Decision.RECORD_AND_SAMPLE
        for _ in range(count)
    )
    return kept / count


def test_a_probabilistic_strategy_keeps_its_share_and_says_so_on_the_root() -> None:
    sampler = sampler_serving(PROBABILISTIC)
    assert share_sampled(sampler) == pytest.approx(0.25, abs=0.01)
    result = sampler.should_sample(None, 0, "GET /")  # the lowest id is always in
    assert result.attributes == {"jaeger.sampler.type": "probabilistic", "jaeger.sampler.param": 0.25}


def test_a_rate_limiting_strategy_caps_traces_per_second() -> None:
    sampler = sampler_serving(RATE_LIMITING)
    assert share_sampled(sampler, count=1000) * 1000 <= 3  # a burst of 2, plus what a few ms refill


def test_per_operation_rates_and_the_default() -> None:
    sampler = sampler_serving(PER_OPERATION)
    assert share_sampled(sampler, "GET /health") == 0
    assert share_sampled(sampler, "POST /checkout") == 1
    assert share_sampled(sampler, "GET /cart") == pytest.approx(0.5, abs=0.01)


def test_the_lower_bound_lets_a_never_sampled_operation_through_now_and_then() -> None:
    floor: dict[str, Any] = {**PER_OPERATION["operationSampling"], "defaultLowerBoundTracesPerSecond": 1.0}
    answer = {**PER_OPERATION, "operationSampling": floor}
    sampler = sampler_serving(answer)
    kept = [sampler.should_sample(None, 2**64 - 1, "GET /health") for _ in range(100)]
    assert [r.decision for r in kept].count(Decision.RECORD_AND_SAMPLE) == 1
    assert kept[0].attributes == {"jaeger.sampler.type": "lowerbound", "jaeger.sampler.param": 0.0}


def test_until_the_first_answer_and_after_a_failure_the_last_strategy_holds() -> None:
    answers: list[Mapping[str, Any] | Exception] = [PROBABILISTIC, ConnectionError("down")]

    def fetch(url: str) -> Mapping[str, Any]:
        assert url == "http://tracesearch:4318/api/sampling?service=shop+cart"
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    sampler = JaegerRemoteSampler("shop cart", "http://tracesearch:4318/", fetch=fetch, poll=False, initial_rate=0.001)
    assert sampler.strategy.rate == 0.001
    assert sampler.refresh() and sampler.strategy.rate == 0.25
    assert not sampler.refresh() and sampler.strategy.rate == 0.25


def test_numbers_and_snake_case_as_older_agents_send_them() -> None:
    strategy = parse_strategy({"strategy_type": 1, "rate_limiting_sampling": {"max_traces_per_second": 7}})
    assert (strategy.kind, strategy.rate) == ("ratelimiting", 7.0)
    with pytest.raises(ValueError, match="unknown strategyType"):
        parse_strategy({"strategyType": "ADAPTIVE"})


def test_parent_based_keeps_a_trace_whole() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(root=sampler_serving(PER_OPERATION)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /health"), tracer.start_as_current_span("POST /checkout"):
        pass  # the child's own operation would be kept, but it follows its dropped root
    with tracer.start_as_current_span("POST /checkout"), tracer.start_as_current_span("GET /health"):
        pass
    names = [span.name for span in exporter.get_finished_spans()]
    assert names == ["GET /health", "POST /checkout"]  # the kept trace, child first, whole


def test_the_sampler_arg_in_the_java_agents_form() -> None:
    assert parse_arg("endpoint=http://ts:4318, pollingIntervalMs=5000,initialSamplingRate=0.25") == {
        "endpoint": "http://ts:4318",
        "pollingIntervalMs": "5000",
        "initialSamplingRate": "0.25",
    }
