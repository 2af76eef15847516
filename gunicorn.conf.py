"""gunicorn settings; every value can be overridden on the command line or with GUNICORN_CMD_ARGS."""

import os
import shutil
import sys
import tempfile
from typing import Any

from tracesearch import tenant_overrides
from tracesearch.alerting.ruleset import file_problem as rules_file_problem
from tracesearch.auth.store import file_problem as keys_file_problem
from tracesearch.sampling.provider import file_problem
from tracesearch.settings import Settings, SettingsError

# The master runs this file before it binds or forks: a bad or misspelt TRACESEARCH_* variable stops
# it here, in one line, instead of every worker failing to load the app. SystemExit passes through
# gunicorn's loader, which would print "Failed to read config file" and a traceback for an Exception.
try:
    _settings = Settings.from_env()
except SettingsError as exc:
    sys.exit(f"configuration error: {exc}")
# The per-tenant overrides, parsed with each setting's own parser and checked as the settings are.
try:
    _overrides = tenant_overrides.load(_settings)
except SettingsError as exc:
    sys.exit(f"configuration error: {exc}")
# (where a problem is said to be, settings): the default tenant's, then each listed tenant's.
_every = [("", _settings)] + [
    (f"TRACESEARCH_TENANTS_FILE: tenants.{tenant}: ", _overrides.apply(_settings, tenant))
    for tenant in _overrides.tenants()
]
# A strategies file that cannot be served stops the service here, once; a worker that starts later
# while the file is bad answers 503 on the sampling endpoints instead (tracesearch/sampling/provider.py).
for _where, _each in _every:
    _strategies_problem = file_problem(_each.sampling_strategies_file)
    if _strategies_problem:
        sys.exit(f"configuration error: {_where}{_strategies_problem}")
# The same for the alert rules file: a worker starting later while it is bad evaluates no rules and its
# alerts API answers 503 (tracesearch/alerting/ruleset.py).
for _where, _each in _every:
    _rules_problem = rules_file_problem(_each.alerts_rules_file)
    if _rules_problem:
        sys.exit(f"configuration error: {_where}{_rules_problem}")
# And the API keys file: a worker starting later while it is bad fails to boot (closed, never open).
_keys_problem = keys_file_problem(_settings.auth_keys_file)
if _keys_problem:
    sys.exit(f"configuration error: {_keys_problem}")

bind = f"127.0.0.1:{_settings.port}"
# Threads overlap the waits on Elasticsearch/Kafka; processes use the cores.
worker_class = "gthread"
workers = _settings.workers
threads = _settings.threads
timeout = 120
graceful_timeout = 30
keepalive = 30
accesslog = None
errorlog = "-"
loglevel = "info"

# /metrics adds up the counters of every worker (prometheus_client multiprocess mode); the folder
# must exist before a worker imports prometheus_client, and start empty.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tracesearch-metrics-")
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server: object) -> None:
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def post_worker_init(worker: object) -> None:
    """The app is loaded: collect garbage less often (see tracesearch/gctune.py), and start deleting
    the indices the retention expired, and (when on) the adaptive sampling runner and the alert evaluator."""
    from tracesearch import gctune

    gctune.tune()
    components = _components(worker)
    if components is not None:
        components.start_retention()
        components.start_adaptive_sampling()
        components.start_alert_rules()
        components.start_alerts()
    # gunicorn says "Booting worker" before the app loads; this line says the worker can take requests.
    worker.log.info("worker %s ready", worker.pid)  # type: ignore[attr-defined]


def _components(worker: object) -> Any:
    """The worker's composition root (``tracesearch.components``), which ``create_app`` keeps."""
    app = getattr(getattr(worker, "wsgi", None), "extensions", {}) if worker else {}
    return app.get("tracesearch") if isinstance(app, dict) else None


def worker_exit(server: object, worker: object) -> None:
    """Flush what the worker holds before it goes (SIGTERM, max_requests, reload): the Kafka producer,
    the service graph's pending pairs and aggregates."""
    components = _components(worker)
    if components is not None:
        components.close()


def child_exit(server: object, worker: object) -> None:
    # Imported here, not at the top: prometheus_client picks its storage when first imported, and
    # the workers forked from this process must see PROMETHEUS_MULTIPROC_DIR by then.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
