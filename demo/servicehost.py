"""One demo service process: ``python -m demo.servicehost --service NAME ...``.

Started by :mod:`demo.processes`. Serves on a listening socket inherited from the
parent, exits on SIGTERM after flushing its spans, and prints one report line
(which span ids it exported) on stdout for the parent.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry.instrumentation.requests import RequestsInstrumentor
from werkzeug.serving import make_server

from demo.config import REPORT_PREFIX, SERVICES_BY_NAME, ingest_url
from demo.services import FACTORIES
from demo.services.common import instrument
from demo.telemetry import make_provider

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
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=URL")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    # Stable HTTP semantic conventions (http.request.method, http.response.status_code);
    # read once by the instrumentations, so it must be set before they are created.
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
    # Ctrl-C reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format=f"[{args.service}] %(levelname)s %(name)s: %(message)s")
    # werkzeug would lower its own logger to INFO and log every request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _die_with_parent(args.parent_pid)

    spec = SERVICES_BY_NAME[args.service]
    peers = dict(peer.split("=", 1) for peer in args.peer)
    provider, ledger = make_provider(spec, args.base_url)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    app = FACTORIES[spec.name](peers, provider.get_tracer(f"demo.{spec.name}", spec.version))
    server = make_server("127.0.0.1", 0, instrument(app, provider), threaded=True, fd=args.fd)

    def on_sigterm(_signum: int, _frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so not from this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        provider.shutdown()  # drains the BatchSpanProcessor: the flush before exit
        report: dict[str, object] = {"service": spec.name, "endpoint": ingest_url(args.base_url, spec.ingest)}
        report.update(ledger.snapshot())
        with contextlib.suppress(BrokenPipeError):  # parent gone: nobody wants it
            print(REPORT_PREFIX + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
