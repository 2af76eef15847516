"""Command line: ``python -m tracesearch <command>`` (also installed as ``tracesearch``)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tracesearch.settings import Settings, SettingsError, settings_table

# The version devstack/maven.py pins too (the package cannot import the dev stack): older defaults of
# Maven's super-POM lack the `copy` options used here.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MVN_OUTPUT_TAIL = 2000


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
    from tracesearch import tenant_overrides
    from tracesearch.storage.es.client import make_client
    from tracesearch.storage.es.retention import RetentionSweeper

    tenants = tenant_overrides.load(settings).retentions(settings)
    sweeper = RetentionSweeper(make_client(settings), settings.index_prefix, settings.retention_s, tenants=tenants)
    if not sweeper.active:
        print("TRACESEARCH_RETENTION is 0 (and no tenant's is set): nothing expires")
        return 0
    names = sweeper.expired() if dry_run else sweeper.sweep()
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {len(names)} indices" + "".join(f"\n  {name}" for name in names))
    return 0


def _fetch_ui(into: str | None, jar: str | None) -> int:
    """Put Zipkin's UI into a folder the service serves (TRACESEARCH_UI_DIR): a one-off step, so the
    service itself never downloads anything and needs no Maven."""
    from tracesearch.api.ui import LENS, UiAssetsError, extract

    folder = Path(into) if into else _ui_dir_setting()
    if folder is None:
        print("fetch-ui: say where: --into DIR, or set TRACESEARCH_UI_DIR", file=sys.stderr)
        return 2
    try:
        names = extract(Path(jar), folder, LENS) if jar else _download_and_extract(folder)
    except UiAssetsError as exc:
        print(f"fetch-ui: {exc}", file=sys.stderr)
        return 1
    print(f"Zipkin UI (Lens {LENS.version}, {len(names)} files, checksum verified) in {folder}")
    print(f"serve it with TRACESEARCH_UI=true TRACESEARCH_UI_DIR={folder.resolve()}")
    return 0


def _ui_dir_setting() -> Path | None:
    ui_dir = Settings.from_env().ui_dir.strip()
    return Path(ui_dir) if ui_dir else None


def _download_and_extract(folder: Path) -> list[str]:
    """zipkin-server's exec jar from Maven Central with ``mvn`` (it honours ~/.m2/settings.xml mirrors and
    proxies), into a temporary folder deleted afterwards."""
    from tracesearch.api.ui import LENS, UiAssetsError, extract

    by_hand = (
        f"or download {LENS.url} ({LENS.size_mb} MB) with any HTTP client and run "
        f"`python -m tracesearch fetch-ui --jar {LENS.file_name} --into {folder}`"
    )
    mvn = shutil.which("mvn")
    if mvn is None:
        raise UiAssetsError(f"Maven (mvn) is not on PATH: install it (apt-get install maven), {by_hand}")
    with tempfile.TemporaryDirectory(prefix="tracesearch-fetch-ui-") as tmp:
        print(f"downloading {LENS.coordinates} ({LENS.size_mb} MB) with mvn", file=sys.stderr)
        command = [
            mvn,
            "-q",
            "-B",
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={LENS.coordinates}",
            f"-DoutputDirectory={tmp}",
        ]
        done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-MVN_OUTPUT_TAIL:]
            raise UiAssetsError(
                f"mvn could not download {LENS.coordinates} (exit {done.returncode}); {by_hand}\n{output}"
            )
        return extract(Path(tmp) / LENS.file_name, folder, LENS)


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    from tracesearch.alerting import command as alerts_cli
    from tracesearch.components import Components

    components = Components(settings)
    if args.alerts_command == "list":
        return alerts_cli.list_alerts(components.alert_rules, components.alert_state, sys.stdout)
    evaluator = components.alert_evaluator
    if evaluator is None:
        print("alerts test: this build has no alert evaluator yet; only the file was checked", file=sys.stderr)
    return alerts_cli.run_test(args.rule_file, args.since, args.step, evaluator, sys.stdout)


def _alerts_parser(commands: Any) -> None:
    alerts = commands.add_parser("alerts", help="alert rules and alerts (TRACESEARCH_ALERTS_RULES_FILE)")
    sub = alerts.add_subparsers(dest="alerts_command", required=True)
    sub.add_parser("list", help="the rules of TRACESEARCH_ALERTS_RULES_FILE and the current alerts")
    test = sub.add_parser(
        "test",
        help="validate a rules file and print what it would have fired over the last hour (nothing is notified); "
        "exit 0: nothing fires, 1: something fires, 2: invalid file or evaluation failed",
    )
    test.add_argument("rule_file", metavar="RULE_FILE", help="a rules file (YAML)")
    test.add_argument("--since", default="1h", help="how far back to look (default 1h)")
    test.add_argument("--step", default="1m", help="evaluate every STEP, as the scheduler would (default 1m)")


def _auth_parser(commands: Any) -> None:
    auth = commands.add_parser("auth", help="API keys (TRACESEARCH_AUTH_KEYS_FILE): add, list, revoke")
    sub = auth.add_subparsers(dest="auth_command", required=True)
    add = sub.add_parser("add-key", help="make a key, append its hash to the file, print the key once")
    add.add_argument("--scopes", required=True, help="comma-separated: ingest, read, admin")
    add.add_argument("--tenant", help="bind the key to a tenant ([a-z0-9][a-z0-9_-]{0,62})")
    add.add_argument("--description", default="", help="who or what holds it")
    add.add_argument("--id", dest="key_id", help="the key's id (default: 8 random hex digits)")
    for parser in (add, sub.add_parser("list", help="ids, scopes, tenants and descriptions (never hashes)")):
        parser.add_argument("--file", help="the keys file (default TRACESEARCH_AUTH_KEYS_FILE)")
    revoke = sub.add_parser("revoke", help="remove a key from the file (refused within the reload interval)")
    revoke.add_argument("key_id", metavar="ID")
    revoke.add_argument("--file", help="the keys file (default TRACESEARCH_AUTH_KEYS_FILE)")


def _auth(args: argparse.Namespace) -> int:
    from tracesearch.auth import command

    path = args.file or Settings.from_env().auth_keys_file
    if not path:
        print("auth: say which file: --file PATH, or set TRACESEARCH_AUTH_KEYS_FILE", file=sys.stderr)
        return 2
    if args.auth_command == "add-key":
        return command.add_key(
            path, args.scopes, args.tenant, args.description, args.key_id, sys.stdout, sys.stderr
        )
    if args.auth_command == "list":
        return command.list_keys(path, sys.stdout, sys.stderr)
    return command.revoke(path, args.key_id, sys.stdout, sys.stderr)


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
    fetch_ui = commands.add_parser(
        "fetch-ui", help="put Zipkin's UI (Lens) into a folder for TRACESEARCH_UI_DIR: zipkin-server's jar, checked"
    )
    fetch_ui.add_argument("--into", help="the folder (default TRACESEARCH_UI_DIR); an earlier fetch there is replaced")
    fetch_ui.add_argument("--jar", help="a zipkin-server exec jar downloaded already (no mvn needed)")
    _alerts_parser(commands)
    _auth_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "settings-table":
        print(settings_table())
        return 0
    try:
        if args.command == "fetch-ui":
            return _fetch_ui(args.into, args.jar)
        if args.command == "auth":
            return _auth(args)
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
        try:
            sampler = components.tail_sampler
        except SettingsError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        return run_ingester(settings, components.store_pipeline_of, components.limits, components.close, sampler)
    if args.command == "alerts":
        return _alerts(args, settings)
    if args.command == "delete-expired":
        return _delete_expired(settings, args.dry_run)
    return _install_templates(settings)
