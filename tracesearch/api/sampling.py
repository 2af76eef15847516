"""Jaeger's remote-sampling API, and the admin API of the strategies file.

- ``GET /api/sampling?service=`` (Jaeger's collector and query service) and ``GET /sampling?service=``
  (the agent's path, which OpenTelemetry's ``jaegerremote`` samplers are pointed at): the service's
  ``SamplingStrategyResponse`` JSON, as Jaeger writes it (``tracesearch/sampling/strategies.py``).
  Jaeger answers a missing service with a plain-text 400; ours is JSON, naming ``service``.
- ``GET /api/v1/sampling/strategies``: the strategies file as this process serves it;
  ``PUT /api/v1/sampling/strategies``: a new file, validated (400 naming the wrong field) and written
  atomically to ``TRACESEARCH_SAMPLING_STRATEGIES_FILE``, which every process reloads on change.

No gRPC ``SamplingManager`` here: gunicorn's HTTP workers serve no gRPC (see the README's Sampling section).
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, request
from marshmallow import EXCLUDE, Schema, fields

from tracesearch.api import errors
from tracesearch.api.blueprint import Blueprint, ErrorFormat
from tracesearch.api.context import sampling, settings
from tracesearch.api.http_errors import ApiError, BadRequest, NotFound, PayloadTooLarge, Unavailable
from tracesearch.sampling.provider import NoStrategiesFile, StrategiesUnavailable
from tracesearch.sampling.strategies import StrategiesError

# A strategies file of thousands of services is far below this; more is a mistake, not a file.
MAX_BODY_BYTES = 4 * 1024 * 1024
NO_FILE = (
    "no strategies file: set TRACESEARCH_SAMPLING_STRATEGIES_FILE (a Jaeger strategies.json, '{}' to start) "
    "to manage strategies here; without one every service is served TRACESEARCH_SAMPLING_DEFAULT_PROBABILITY"
)

bp = Blueprint(
    "sampling",
    __name__,
    description="Jaeger's remote-sampling API (strategies per service and operation) and the admin API of "
    "the strategies file (TRACESEARCH_SAMPLING_STRATEGIES_FILE); JSON errors",
    errors=ErrorFormat(errors.render_json, errors.JsonError),
)


class Conflict(ApiError):
    status = 409


class SamplingParams(Schema):
    class Meta:
        unknown = EXCLUDE

    service = fields.String(
        required=True,
        metadata={"description": "the service asking (its service.name); unlisted ones get the default strategy"},
    )


class ProbabilisticSampling(Schema):
    samplingRate = fields.Float(metadata={"description": "probability in [0, 1]"})


class RateLimitingSampling(Schema):
    maxTracesPerSecond = fields.Integer(metadata={"description": "traces per second (per client process)"})


class OperationStrategySchema(Schema):
    operation = fields.String(metadata={"description": "span name of a root span"})
    probabilisticSampling = fields.Nested(ProbabilisticSampling)


class OperationSamplingSchema(Schema):
    defaultSamplingProbability = fields.Float(metadata={"description": "for operations not listed"})
    defaultLowerBoundTracesPerSecond = fields.Float(
        metadata={"description": "per operation and client process, sampled whatever the probability (adaptive)"}
    )
    perOperationStrategies = fields.List(fields.Nested(OperationStrategySchema))
    defaultUpperBoundTracesPerSecond = fields.Float(metadata={"description": "always 0 (unused, as in Jaeger)"})


class SamplingStrategyResponse(Schema):
    strategyType = fields.String(
        metadata={
            "enum": ["PROBABILISTIC", "RATE_LIMITING"],
            "description": "which of the two service-wide fields is present; PROBABILISTIC with operationSampling",
        }
    )
    probabilisticSampling = fields.Nested(ProbabilisticSampling)
    rateLimitingSampling = fields.Nested(RateLimitingSampling)
    operationSampling = fields.Nested(
        OperationSamplingSchema, metadata={"description": "per-operation probabilities; clients prefer it when present"}
    )


class FileOperationStrategy(Schema):
    operation = fields.String(required=True)
    type = fields.String(required=True, metadata={"enum": ["probabilistic"]})
    param = fields.Float(required=True, metadata={"description": "probability in [0, 1]"})


class FileStrategy(Schema):
    type = fields.String(required=True, metadata={"enum": ["probabilistic", "ratelimiting"]})
    param = fields.Float(
        required=True,
        metadata={"description": "probabilistic: probability in [0, 1]; ratelimiting: whole traces per second"},
    )
    operation_strategies = fields.List(fields.Nested(FileOperationStrategy))


class FileServiceStrategy(FileStrategy):
    service = fields.String(required=True)


class StrategiesFile(Schema):
    default_strategy = fields.Nested(FileStrategy, metadata={"description": "for services not listed"})
    service_strategies = fields.List(fields.Nested(FileServiceStrategy))


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, mimetype="application/json")


def _strategy(service: str) -> Response:
    try:
        strategy = sampling().strategy(service)
    except StrategiesUnavailable as exc:
        raise _unavailable(exc) from None
    return _json(strategy.to_json())


def _unavailable(exc: StrategiesUnavailable) -> Unavailable:
    return Unavailable(f"sampling strategies not loaded: {exc}", retry_after_s=settings().retry_after_s)


STRATEGY_ANSWER = "the service's strategy (Jaeger's SamplingStrategyResponse)"


@bp.get("/api/sampling")
@bp.query(SamplingParams)
@bp.answers(STRATEGY_ANSWER, SamplingStrategyResponse)
@bp.fails(400, 503)
def api_sampling(args: dict[str, Any]) -> Response:
    """Sampling strategy of a service (Jaeger's collector path)"""
    return _strategy(args["service"])


@bp.get("/sampling")
@bp.query(SamplingParams)
@bp.answers(STRATEGY_ANSWER, SamplingStrategyResponse)
@bp.fails(400, 503)
def agent_sampling(args: dict[str, Any]) -> Response:
    """Sampling strategy of a service (the Jaeger agent's path, polled by OpenTelemetry's jaegerremote samplers)"""
    return _strategy(args["service"])


@bp.get("/api/v1/sampling/strategies")
@bp.answers("the strategies file as this process serves it", StrategiesFile)
@bp.fails(404, 503)
def get_strategies() -> Response:
    """The sampling strategies file"""
    try:
        return _json(sampling().document())
    except NoStrategiesFile:
        raise NotFound(NO_FILE) from None
    except StrategiesUnavailable as exc:
        raise _unavailable(exc) from None


@bp.put("/api/v1/sampling/strategies")
@bp.json_body("a Jaeger strategies.json document; replaces the file whole", StrategiesFile)
@bp.answers("stored: the file as it is now served", StrategiesFile)
@bp.fails(400, 409, 413)
def put_strategies() -> Response:
    """Replace the sampling strategies file

    Validated first (400 naming the wrong field, e.g. service_strategies[2].param), then written atomically;
    this process serves it at once, the others within TRACESEARCH_SAMPLING_RELOAD_INTERVAL.
    """
    provider = sampling()
    if not provider.configured:
        raise Conflict(NO_FILE)
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the strategies file is over {MAX_BODY_BYTES} bytes", field="body")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}", field="body") from None
    try:
        provider.replace(document)
    except StrategiesError as exc:
        raise BadRequest(str(exc), field=exc.path or "body") from None
    return _json(document)
