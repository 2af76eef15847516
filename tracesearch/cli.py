"""Command line: ``python -m tracesearch <command>`` (also installed as ``tracesearch``)."""

from __future__ import annotations

import argparse
import sys

from tracesearch.settings import Settings, SettingsError, settings_table


def _install_templates(settings: Settings) -> int:
    from tracesearch.storage.es.client import make_client
    from tracesearch.storage.es.templates import TemplatesNotFound, install_templates

    try:
        names = install_templates(make_client(settings), settings)
    except TemplatesNotFound as exc:
        print(f"install-templates: {exc}", file=sys.stderr)
        return 1
    print("installed:", ", ".join(names))
    return 0


def _delete_expired(settings: Settings, dry_run: bool) -> int:
    from tracesearch.storage.es.client import make_client
    from tracesearch.storage.es.retention import RetentionSweeper

    if settings.retention_s <= 0:
        print("TRACESEARCH_RETENTION is 0: nothing expires")
        return 0
    sweeper = RetentionSweeper(make_client(settings), settings.index_prefix, settings.retention_s)
    names = sweeper.expired() if dry_run else sweeper.sweep()
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {len(names)} indices" + "".join(f"\n  {name}" for name in names))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracesearch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install-templates", help="install the Elasticsearch index templates (idempotent)")
    commands.add_parser("settings-table", help="print the configuration table of the README")
    commands.add_parser("ingester", help="consume the Kafka span topic and write to Elasticsearch")
    expire = commands.add_parser(
        "delete-expired", help="delete the daily indices older than TRACESEARCH_RETENTION (the service does it hourly)"
    )
    expire.add_argument("--dry-run", action="store_true", help="only list them")
    args = parser.parse_args(argv)
    if args.command == "settings-table":
        print(settings_table())
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "ingester":
        import logging

        from tracesearch.components import Components
        from tracesearch.pipeline.kafka_ingester import run_ingester

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        logging.getLogger("elastic_transport").setLevel(logging.WARNING)
        logging.getLogger("kafka").setLevel(logging.WARNING)
        components = Components(settings)
        return run_ingester(settings, components.store_pipeline, components.limits, components.close)
    if args.command == "delete-expired":
        return _delete_expired(settings, args.dry_run)
    return _install_templates(settings)
