"""``python -m devstack <command>``.

Results (URLs, status, export lines) go to stdout; progress goes to stderr,
so ``eval "$(python -m devstack env)"`` stays clean.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from devstack import cleanup, elasticsearch, kafka, service, stack
from devstack.errors import DevstackError
from devstack.settings import Settings

EXIT_FAILURE = 1
# Like `systemctl status`: the command worked, but not everything is up.
EXIT_NOT_ALL_HEALTHY = 3

Command = Callable[[Settings], int]

# Takes a command line rather than settings alone, so it is not in COMMANDS.
RUN = "run"
RUN_HELP = "run -- COMMAND ...: run it, then stop what of the dev stack it started (for `make test`)"


def _up(settings: Settings) -> int:
    _print(stack.up(settings))
    return 0


def _down(settings: Settings) -> int:
    stack.down(settings)
    return 0


def _status(settings: Settings) -> int:
    statuses = stack.status(settings)
    _print([s.line() for s in statuses])
    needed = [s for s in statuses if s.needed]
    return 0 if all(s.healthy for s in needed) else EXIT_NOT_ALL_HEALTHY


def _env(settings: Settings) -> int:
    _print(stack.export_lines(stack.status(settings)))
    return 0


def _start_es(settings: Settings) -> int:
    _print([elasticsearch.start(settings)])
    return 0


def _stop_es(settings: Settings) -> int:
    elasticsearch.stop(settings)
    return 0


def _start_kafka(settings: Settings) -> int:
    _print([kafka.start(settings)])
    return 0


def _stop_kafka(settings: Settings) -> int:
    kafka.stop(settings)
    return 0


def _start_service(settings: Settings) -> int:
    service.start(settings)
    _print(stack.endpoint_lines(settings)[2:])
    return 0


def _stop_service(settings: Settings) -> int:
    service.stop(settings)
    return 0


COMMANDS: dict[str, tuple[Command, str]] = {
    "up": (_up, "start Elasticsearch, Kafka and the service; print the URLs"),
    "down": (_down, "stop everything the dev stack started, every Elasticsearch node included"),
    "status": (_status, "show each component; exit 3 unless all configured ones are healthy"),
    "env": (_env, "print `export` lines for what runs (eval them in a shell)"),
    "start-es": (_start_es, "start Elasticsearch (no-op when healthy)"),
    "stop-es": (_stop_es, "stop Elasticsearch"),
    "start-kafka": (_start_kafka, "start Kafka (no-op when healthy)"),
    "stop-kafka": (_stop_kafka, "stop Kafka"),
    "start-service": (_start_service, "start the service (and the ingester)"),
    "stop-service": (_stop_service, "stop the service (and the ingester)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Local Elasticsearch + Kafka + tracesearch for development and tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    sub.add_parser(RUN, help=RUN_HELP, description=RUN_HELP).add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devstack: %(message)s", stream=sys.stderr)
    # kafka-python logs every refused connection while a broker starts.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        if args.command == RUN:
            return cleanup.run(_without_separator(args.argv), Settings.from_env())
        command, _ = COMMANDS[args.command]
        return command(Settings.from_env())
    except DevstackError as error:
        print(f"devstack: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("devstack: interrupted", file=sys.stderr)
        return 130


def _without_separator(argv: Sequence[str]) -> list[str]:
    words = list(argv)
    return words[1:] if words[:1] == ["--"] else words


def _print(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
