"""One measured process of benchmark 3 (``bench.instrument``); prints its figures as one JSON line.

``requests VARIANT``: a Flask app driven through WSGI calls in this process, with no OpenTelemetry
(``plain``), the bare SDK wired by hand (``bare``) or ``tracesearch.instrument.setup()`` (``setup``).
``formatter``: ECS log formatting per record, ecs-logging's StdlibFormatter against tracesearch's
EcsFormatter. The tracer provider is global state, one per process, so every variant is a process of
its own; the parent alternates them. Nothing Flask or OpenTelemetry is imported at module level:
``setup()`` must run before Flask is imported, as its documentation says.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from wsgiref.types import WSGIApplication

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None] | None
SERVICE = "bench-shop"
# The same in every variant: one root handler with a plain text format, writing to /dev/null. The
# formatter's own cost is measured apart (`formatter`), so a request's figure is the instrumentation's.
LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
TRACEPARENTS = 64


def _configure_logging() -> None:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _traceparents(sampled: bool) -> list[str]:
    """Incoming W3C headers from an upstream service: its sampling decision is in the flags."""
    flags = "01" if sampled else "00"
    return [f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-{flags}" for _ in range(TRACEPARENTS)]


def _bare_sdk(endpoint: str, extras: Sequence[str] = ()) -> Callable[[], bool]:
    """What a user wires by hand from the OpenTelemetry docs; the sampler comes from OTEL_TRACES_SAMPLER."""
    from opentelemetry import propagate, trace
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    RequestsInstrumentor().instrument()
    _add(extras, provider)
    return provider.force_flush


# What setup() does beyond the SDK wired by hand, one piece at a time (added to `bare` to find its cost).
EXTRAS = ("propagator", "logging", "meter", "logger_provider", "flask_class")
# For `setup`: a no-op meter provider installed first, so the SDK's (set once) is refused: the fix proposed.
SETUP_EXTRAS = ("noop_meter",)


def _add(extras: Sequence[str], provider: Any) -> None:
    from opentelemetry import propagate

    if "propagator" in extras:  # extracts Jaeger, B3 and W3C
        from tracesearch.instrument import TracesearchPropagator

        propagate.set_global_textmap(TracesearchPropagator())
    if "logging" in extras:  # trace ids stamped on every record
        from opentelemetry.instrumentation.logging import LoggingInstrumentor

        os.environ["OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION"] = "false"
        LoggingInstrumentor().instrument(tracer_provider=provider, inject_trace_context=True, set_logging_format=False)
    if "meter" in extras:  # _initialize_components installs an SDK MeterProvider, with no reader here
        from opentelemetry.metrics import set_meter_provider
        from opentelemetry.sdk.metrics import MeterProvider

        set_meter_provider(MeterProvider(resource=provider.resource))
    if "logger_provider" in extras:  # and an SDK LoggerProvider
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider

        set_logger_provider(LoggerProvider(resource=provider.resource))
    if "flask_class" in extras:  # flask.Flask replaced before the app is made, instead of instrument_app(app)
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument(tracer_provider=provider)


def _setup(endpoint: str, extras: Sequence[str] = ()) -> Callable[[], bool]:
    import tracesearch.instrument

    if "noop_meter" in extras:
        from opentelemetry.metrics import NoOpMeterProvider, set_meter_provider

        set_meter_provider(NoOpMeterProvider())
        logging.getLogger("opentelemetry.metrics._internal").setLevel(logging.ERROR)  # "overriding not allowed"

    return tracesearch.instrument.setup(service_name=SERVICE, endpoint=endpoint).force_flush


def _app(variant: str, extras: Sequence[str] = ()) -> WSGIApplication:
    import flask

    app = flask.Flask(SERVICE)
    log = logging.getLogger("bench.shop")

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> dict[str, int]:
        total = sum(i * order_id for i in range(16))
        log.info("order %d: total %d", order_id, total)
        return {"id": order_id, "total": total}

    if variant == "bare" and "flask_class" not in extras:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor.instrument_app(app)  # type: ignore[no-untyped-call]
    return app


def _environs(traceparents: Sequence[str]) -> list[dict[str, Any]]:
    from werkzeug.test import EnvironBuilder

    return [
        EnvironBuilder(
            path=f"/orders/{index}",
            headers=[("traceparent", header), ("User-Agent", "bench/1"), ("Accept", "application/json")],
        ).get_environ()
        for index, header in enumerate(traceparents)
    ]


def _no_write(data: bytes) -> object:
    raise RuntimeError("the view wrote through write()")


def _drive(app: WSGIApplication, environs: Sequence[dict[str, Any]], count: int) -> None:
    statuses: list[str] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: ExcInfo = None
    ) -> Callable[[bytes], object]:
        statuses.append(status)
        return _no_write

    for index in range(count):
        environ = dict(environs[index % len(environs)])
        environ["wsgi.input"] = io.BytesIO(b"")
        answer = app(environ, start_response)
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()  # ends the server span of the WSGI middleware
        if statuses[-1] != "200 OK" or not body:
            raise RuntimeError(f"request {index}: {statuses[-1]} {body[:200]!r}")
        statuses.clear()


def requests_run(
    variant: str, endpoint: str, sampled: bool, count: int, warmup: int, extras: Sequence[str] = ()
) -> dict[str, Any]:
    _configure_logging()
    flush: Callable[[], bool] | None = None
    if variant == "bare":
        flush = _bare_sdk(endpoint, extras)
    elif variant == "setup":
        flush = _setup(endpoint, extras)
    elif variant != "plain":
        raise SystemExit(f"unknown variant {variant!r}")
    app = _app(variant, extras)
    environs = _environs(_traceparents(sampled))
    _drive(app, environs, warmup)
    if flush is not None:
        flush()  # the warm-up's spans leave before the clock starts
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    _drive(app, environs, count)
    if flush is not None:
        flush()  # and the measured requests' spans are exported inside the window
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"variant": variant, "sampled": sampled, "requests": count, "warmup": warmup, "cpu_s": cpu, "wall_s": wall}


# --- formatter --------------------------------------------------------------------------------

MESSAGE = "order %d: total %d"


def formatter_run(rounds: int, records: int) -> dict[str, Any]:
    """Per round and case, both formatters format fresh records; their order alternates by round.

    Cases: outside any span and inside a sampled span, with the records stamped by the logging
    instrumentation as setup() configures it; and inside a span with unstamped records (logging
    instrumentation off), where EcsFormatter reads the current span itself.
    """
    import ecs_logging
    from opentelemetry import trace
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from tracesearch.instrument import EcsFormatter

    os.environ["OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION"] = "false"  # as setup() sets it: no OTLP log handler
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))  # no processor: no thread
    trace.set_tracer_provider(provider)
    LoggingInstrumentor().instrument(tracer_provider=provider, inject_trace_context=True, set_logging_format=False)
    tracer = trace.get_tracer("bench")
    logger = logging.getLogger("bench.shop")
    formatters: dict[str, logging.Formatter] = {
        "ecs": ecs_logging.StdlibFormatter(),
        "tracesearch": EcsFormatter(service_name=SERVICE),
    }

    span = range(records)

    def stamped() -> list[logging.LogRecord]:
        # Logger.makeRecord goes through the record factory the logging instrumentation installed.
        return [logger.makeRecord(logger.name, logging.INFO, __file__, 1, MESSAGE, (i, 7 * i), None) for i in span]

    def unstamped() -> list[logging.LogRecord]:
        return [logging.LogRecord(logger.name, logging.INFO, __file__, 1, MESSAGE, (i, 7 * i), None) for i in span]

    cases: dict[str, tuple[bool, Callable[[], list[logging.LogRecord]]]] = {
        "outside": (False, stamped),
        "span": (True, stamped),
        "span_unstamped": (True, unstamped),
    }
    cpu: dict[str, dict[str, list[float]]] = {case: {name: [] for name in formatters} for case in cases}
    line_bytes: dict[str, dict[str, int]] = {case: {} for case in cases}
    create: dict[str, list[float]] = {"stamped": [], "unstamped": []}
    for round_index in range(rounds + 1):  # round 0 warms up and is not counted
        names = list(formatters) if round_index % 2 else list(reversed(formatters))
        for case, (in_span, make) in cases.items():
            for name in names:
                with tracer.start_as_current_span("request") if in_span else _nothing():
                    batch = make()
                    gc.collect()
                    began = time.process_time()
                    for record in batch:
                        formatters[name].format(record)
                    spent = time.process_time() - began
                    if round_index:
                        cpu[case][name].append(spent * 1e6 / records)
                    line_bytes[case][name] = len(formatters[name].format(batch[0]).encode())
        # What the logging instrumentation adds to every record logged, formatter or not.
        with tracer.start_as_current_span("request"):
            for kind, make in (("stamped", stamped), ("unstamped", unstamped)):
                began = time.process_time()
                make()
                if round_index:
                    create[kind].append((time.process_time() - began) * 1e6 / records)
    samples = {case: _lines(formatters, case, in_span, make, tracer) for case, (in_span, make) in cases.items()}
    return {
        "records": records,
        "rounds": rounds,
        "cpu_us": cpu,
        "line_bytes": line_bytes,
        "create_us": create,
        "samples": samples,
    }


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _lines(
    formatters: dict[str, logging.Formatter],
    case: str,
    in_span: bool,
    make: Callable[[], list[logging.LogRecord]],
    tracer: Any,
) -> dict[str, str]:
    with tracer.start_as_current_span("request") if in_span else _nothing():
        record = make()[0]
        return {name: formatter.format(record) for name, formatter in formatters.items()}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instrument_worker")
    sub = parser.add_subparsers(dest="what", required=True)
    req = sub.add_parser("requests")
    req.add_argument("variant", choices=("plain", "bare", "setup"))
    req.add_argument("--endpoint", required=True)
    req.add_argument("--sampled", action="store_true")
    req.add_argument("--requests", type=int, required=True)
    req.add_argument("--warmup", type=int, required=True)
    req.add_argument("--extra", action="append", choices=EXTRAS + SETUP_EXTRAS, default=[])
    fmt = sub.add_parser("formatter")
    fmt.add_argument("--rounds", type=int, required=True)
    fmt.add_argument("--records", type=int, required=True)
    args = parser.parse_args(list(argv))
    if args.what == "requests":
        result = requests_run(args.variant, args.endpoint, args.sampled, args.requests, args.warmup, args.extra)
    else:
        result = formatter_run(args.rounds, args.records)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
