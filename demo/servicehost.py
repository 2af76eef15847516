"""One Python demo service process: ``python -m demo.servicehost --service NAME ...``.

Started by :mod:`demo.processes`, either plainly or under ``opentelemetry-instrument`` (frontend:
zero code). Everything about telemetry comes from the OTEL_* and TRACESEARCH_INSTRUMENT_* variables
the parent sets. Serves on a listening socket inherited from the parent and exits on SIGTERM after
flushing its spans.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry import trace

from demo.config import SERVICES_BY_NAME, Runtime

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Make sure no service outlives the demo, even if the demo is SIGKILLed."""
    if sys.platform.startswith("linux"):
        # The kernel sends SIGTERM when the parent dies, so spans still get flushed.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    # prctl misses a parent that died before the call, and other systems lack it.
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo.servicehost")
    parser.add_argument("--service", required=True, choices=sorted(SERVICES_BY_NAME))
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=URL")
    parser.add_argument("--kafka", default="", help="bootstrap servers, for services that use Kafka")
    return parser.parse_args(argv)


def _connect(runtime: Runtime) -> None:
    """The one call a service makes (or, under opentelemetry-instrument, none at all)."""
    if runtime is Runtime.PYTHON_SETUP:
        import tracesearch.instrument

        tracesearch.instrument.setup(environment="demo")
    # Kafka is not among what setup() instruments: a service that uses it adds it, the usual way.
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor

    if not KafkaInstrumentor().is_instrumented_by_opentelemetry:
        KafkaInstrumentor().instrument()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    # Ctrl-C reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(args.parent_pid)
    spec = SERVICES_BY_NAME[args.service]
    _connect(spec.runtime)
    # Flask is imported only now: instrumenting replaces the flask.Flask class.
    from werkzeug.serving import make_server

    from demo.services import FACTORIES

    # werkzeug would lower its own logger to INFO and log every request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    peers = dict(peer.split("=", 1) for peer in args.peer)
    app = FACTORIES[spec.name](peers, args.kafka)
    server = make_server("127.0.0.1", 0, app, threaded=True, fd=args.fd)

    def on_sigterm(_signum: int, _frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so not from this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        provider = trace.get_tracer_provider()
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:
            shutdown()  # drains the batch span processor: the flush before exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
