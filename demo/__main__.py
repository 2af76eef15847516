"""``python -m demo run [--requests N] [--base-url URL] [--es-url URL] [--kafka HOST:PORT] [--timeout S]
[--graph-wait S]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from demo.config import BASE_URL_ENV, DEFAULT_BASE_URL, resolve_base_url
from demo.processes import ServiceStartError
from demo.report import failure_text, success_text
from demo.traffic import BackendUnavailableError, run_demo
from devstack.errors import DevstackError
from devstack.settings import Settings

EXIT_NOT_SEARCHABLE = 1
EXIT_SETUP_FAILED = 2
EXIT_INTERRUPTED = 130


def _not_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Send real traces from a polyglot example shop (Python, Java, Node.js) to tracesearch.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the example shop, send traffic, wait until its trace is searchable")
    run.add_argument("--requests", type=_positive, default=20, help="orders to send (default 20)")
    run.add_argument(
        "--base-url",
        help=f"tracesearch base URL (default ${BASE_URL_ENV} or {DEFAULT_BASE_URL})",
    )
    run.add_argument("--es-url", help="Elasticsearch that receives the services' log lines (default: the dev stack's)")
    run.add_argument("--kafka", help="Kafka bootstrap of the checkout -> inventory hop (default: the dev stack's)")
    run.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the trace (default 60)")
    run.add_argument(
        "--graph-wait",
        type=_not_negative,
        default=20.0,
        help="seconds to wait for the service graph's edges; never fails the demo (default 20, 0: skip)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base_url = resolve_base_url(args.base_url)
    print(f"tracesearch demo -> {base_url}", flush=True)

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        stack = Settings.from_env()
        result = run_demo(
            base_url,
            args.es_url or stack.es_url,
            args.kafka or stack.kafka_bootstrap,
            args.requests,
            timeout=args.timeout,
            graph_wait=args.graph_wait,
            log=log,
        )
    except (BackendUnavailableError, ServiceStartError, DevstackError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SETUP_FAILED
    except KeyboardInterrupt:
        # The services were already stopped by ServiceCluster's __exit__.
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print()
    if not result.ok:
        print(failure_text(result, args.timeout), file=sys.stderr)
        return EXIT_NOT_SEARCHABLE
    print(success_text(result, args.es_url or stack.es_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
