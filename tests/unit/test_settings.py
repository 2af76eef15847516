import dataclasses
import re
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import devstack.settings
from demo import config as demo_config
from tracesearch import readme
from tracesearch.settings import (
    OTHER_TOOLS_NAMES,
    OTHER_TOOLS_PREFIXES,
    VARIABLES,
    VARIABLES_BY_FIELD,
    Settings,
    SettingsError,
    check_names,
)

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO / "gunicorn.conf.py"
NAMES = [v.name for v in VARIABLES]


def test_every_field_is_declared_once_with_its_variable() -> None:
    assert list(VARIABLES_BY_FIELD) == [f.name for f in dataclasses.fields(Settings)]
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("field_name", list(VARIABLES_BY_FIELD))
def test_every_variable_parses_its_default_into_the_field_default(field_name: str) -> None:
    variable = VARIABLES_BY_FIELD[field_name]
    assert variable.parse(variable.name, variable.default) == getattr(Settings(), field_name)


def test_no_arguments_give_what_an_empty_environment_gives() -> None:
    assert Settings() == Settings.from_env({})


def test_fields_can_still_be_given_by_name() -> None:
    settings = Settings(index_prefix="p", retention_s=0, es_urls=("http://es:9200",))
    assert (settings.index_prefix, settings.retention_s, settings.es_urls) == ("p", 0, ("http://es:9200",))
    assert settings.port == Settings().port


def test_extra_is_gone() -> None:
    assert "extra" not in {f.name for f in dataclasses.fields(Settings)}


def test_values_are_parsed_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TRACESEARCH_PORT": "5000",
            "TRACESEARCH_WORKERS": "3",
            "TRACESEARCH_ES_URL": "http://a:9200/, http://b:9200 ,",
            "TRACESEARCH_ES_VERIFY_CERTS": "off",
            "TRACESEARCH_INDEX_PREFIX": " Traces ",
            "TRACESEARCH_INGEST_BATCH_WAIT": "1.5s",
            "TRACESEARCH_PIPELINE": "KAFKA",
            "TRACESEARCH_KAFKA_BOOTSTRAP": "k1:9092, k2:9092",
        }
    )
    assert settings.port == 5000 and settings.workers == 3
    assert settings.es_urls == ("http://a:9200", "http://b:9200")
    assert settings.es_verify_certs is False
    assert settings.index_prefix == "traces"
    assert settings.ingest_batch_wait_s == 1.5
    assert settings.pipeline == "kafka"
    assert settings.kafka_bootstrap == ("k1:9092", "k2:9092")


def test_logs_settings_are_parsed() -> None:
    environ = {
        "TRACESEARCH_LOGS_INDEX": " app-logs-*,audit ",
        "TRACESEARCH_LOGS_TRACE_ID_FIELD": "labels.trace_id",
        "TRACESEARCH_LOGS_TIME_MARGIN": "90s",
    }
    settings = Settings.from_env(environ)
    assert (settings.logs_index, settings.logs_trace_id_field) == ("app-logs-*,audit", "labels.trace_id")
    assert settings.logs_time_margin_s == 90.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRACESEARCH_PORT", "http", "TRACESEARCH_PORT='http' is not an integer"),
        ("TRACESEARCH_PORT", "0", "TRACESEARCH_PORT=0 must be at least 1"),
        ("TRACESEARCH_PORT", "70000", "TRACESEARCH_PORT=70000 must be at most 65535"),
        ("TRACESEARCH_WORKERS", "0", "TRACESEARCH_WORKERS=0 must be at least 1"),
        ("TRACESEARCH_THREADS", "many", "TRACESEARCH_THREADS='many' is not an integer"),
        ("TRACESEARCH_MAX_REQUEST_BYTES", "10", "TRACESEARCH_MAX_REQUEST_BYTES=10 must be at least 1024"),
        ("TRACESEARCH_ES_VERIFY_CERTS", "maybe", "TRACESEARCH_ES_VERIFY_CERTS='maybe' is not a boolean"),
        ("TRACESEARCH_ES_TIMEOUT", "soon", "TRACESEARCH_ES_TIMEOUT='soon' is not a duration"),
        ("TRACESEARCH_PIPELINE", "pigeon", "TRACESEARCH_PIPELINE='pigeon': use direct or kafka"),
        ("TRACESEARCH_ES_URL", " , ", "TRACESEARCH_ES_URL is empty"),
        ("TRACESEARCH_LOGS_INDEX", "Logs-*", "TRACESEARCH_LOGS_INDEX='Logs-*': use a lowercase index name"),
        ("TRACESEARCH_LOGS_INDEX", "logs *", "TRACESEARCH_LOGS_INDEX='logs *': use a lowercase index name"),
        ("TRACESEARCH_LOGS_INDEX", " ", "TRACESEARCH_LOGS_INDEX=' ': use a lowercase index name"),
        ("TRACESEARCH_LOGS_TRACE_ID_FIELD", "trace id", "TRACESEARCH_LOGS_TRACE_ID_FIELD='trace id' is not a field"),
        ("TRACESEARCH_LOGS_TRACE_ID_FIELD", "trace.", "TRACESEARCH_LOGS_TRACE_ID_FIELD='trace.' is not a field"),
        ("TRACESEARCH_LOGS_TIME_MARGIN", "soon", "TRACESEARCH_LOGS_TIME_MARGIN='soon' is not a duration"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({name: value})


@pytest.mark.parametrize("name", NAMES)
def test_whatever_a_variable_refuses_the_message_names_it(name: str) -> None:
    for junk in ("-1", "x!", ""):
        try:
            Settings.from_env({name: junk})
        except SettingsError as exc:
            assert name in str(exc)


def test_an_unknown_variable_names_the_closest_setting() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TRACESEARCH_RETENTON": "30d"})
    assert str(raised.value) == "unknown setting TRACESEARCH_RETENTON: did you mean TRACESEARCH_RETENTION?"


def test_every_unknown_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TRACESEARCH_WORKER": "4", "TRACESEARCH_ES_URLS": "http://es:9200", "TRACESEARCH_PORT": "1"})
    assert str(raised.value) == (
        "unknown setting TRACESEARCH_ES_URLS: did you mean TRACESEARCH_ES_URL?; "
        "unknown setting TRACESEARCH_WORKER: did you mean TRACESEARCH_WORKERS?"
    )


def test_the_process_environment_is_checked_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACESEARCH_KAFKA_TOPICS", "spans")
    with pytest.raises(SettingsError, match="did you mean TRACESEARCH_KAFKA_TOPIC"):
        Settings.from_env()


def test_other_prefixes_are_not_ours() -> None:
    Settings.from_env({"TRACESEARCHX": "1", "OTEL_SERVICE_NAME": "x", "tracesearch_port": "x"})


def test_the_dev_stack_grafana_and_demo_names_are_accepted() -> None:
    names = {value for key, value in vars(devstack.settings).items() if key.startswith("ENV_")}
    # devstack.stack (ENV_BASE_URL) is not imported: it drags kafka-python in, noisy for a unit test.
    names |= {"TRACESEARCH_BASE_URL", demo_config.BASE_URL_ENV, "TRACESEARCH_URL"}
    others = {name for name in names if name.startswith("TRACESEARCH_") and name not in NAMES}
    assert {"TRACESEARCH_DEVSTACK_ES_PORT", "TRACESEARCH_BASE_URL", "TRACESEARCH_URL"} <= others
    assert Settings.from_env(dict.fromkeys(others, "9201")) == Settings()


# Tokens in the repository that look like variables but are not read from the environment.
NOT_VARIABLES = {
    "TRACESEARCH_VERSION",  # a Python constant in tracesearch/api/tempo.py
    "TRACESEARCH_X",  # text a test process prints in tests/devstack/test_process.py
    "TRACESEARCH_RETENTON",  # the README's example of a misspelt setting
}
# What .gitignore leaves out, and .git: caches and downloads, not the project's text.
SKIPPED_DIRS = {".git", ".venv", ".devstack", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIPPED_DIRS |= {"build", "dist", "node_modules"}


def _repository_files() -> Iterator[Path]:
    for path in REPO.rglob("*"):
        parts = set(path.relative_to(REPO).parts)
        ignored = parts & SKIPPED_DIRS or any(part.endswith(".egg-info") for part in parts) or path.suffix == ".pyc"
        if path.is_file() and not ignored:
            yield path


def test_every_tracesearch_name_in_the_repository_is_a_setting_or_another_tools() -> None:
    found: dict[str, str] = {}
    for path in _repository_files():
        if path == Path(__file__).resolve():
            continue  # the misspellings above are on purpose
        for name in re.findall(r"TRACESEARCH_[A-Z0-9_]+", path.read_text(errors="ignore")):
            found.setdefault(name, str(path.relative_to(REPO)))
    assert {"TRACESEARCH_DEVSTACK_ES_VERSION", "TRACESEARCH_URL", "TRACESEARCH_RETENTION"} <= set(found)
    refused = []
    for name in sorted(set(found) - NOT_VARIABLES):
        try:
            check_names({name: ""})
        except SettingsError:
            refused.append(f"{name} (in {found[name]})")
    assert refused == [], "declare them in tracesearch/settings.py, or reserve them there for their tool"


def test_the_readme_names_every_reserved_name() -> None:
    section = readme.README.read_text().split("## Configuration", 1)[1]
    for name in [*OTHER_TOOLS_NAMES, *(prefix + "*" for prefix in OTHER_TOOLS_PREFIXES)]:
        assert f"`{name}`" in section


def _gunicorn_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> dict[str, Any]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # or the file makes a temporary folder
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


def test_gunicorn_reads_port_workers_and_threads_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = _gunicorn_conf(
        monkeypatch, tmp_path, TRACESEARCH_PORT="5001", TRACESEARCH_WORKERS="3", TRACESEARCH_THREADS="4"
    )
    assert (conf["bind"], conf["workers"], conf["threads"]) == ("127.0.0.1:5001", 3, 4)


def test_gunicorn_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    conf = _gunicorn_conf(monkeypatch, tmp_path)
    assert (conf["bind"], conf["workers"], conf["threads"]) == (f"127.0.0.1:{Settings().port}", 2, 8)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRACESEARCH_WORKERS", "two", "configuration error: TRACESEARCH_WORKERS='two' is not an integer"),
        ("TRACESEARCH_RETENTON", "1d", "did you mean TRACESEARCH_RETENTION?"),
    ],
)
def test_gunicorn_conf_stops_on_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit, match=re.escape(message)):
        _gunicorn_conf(monkeypatch, tmp_path, **{name: value})


def test_a_gunicorn_start_with_a_misspelt_variable_fails_at_once_with_the_message(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "TRACESEARCH_RETENTON": "1d"}
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", "127.0.0.1:0", "app:app"]
    try:
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("gunicorn started (and kept running) despite the misspelt variable")
    assert done.returncode == 1
    assert "unknown setting TRACESEARCH_RETENTON: did you mean TRACESEARCH_RETENTION?" in done.stderr
    assert "Booting worker" not in done.stderr


def test_a_tail_sampling_policy_is_refused_in_direct_mode_at_start() -> None:
    with pytest.raises(SettingsError, match="TRACESEARCH_PIPELINE=direct: tail sampling needs whole traces"):
        Settings.from_env({"TRACESEARCH_TAIL_SAMPLING_POLICY_FILE": "/etc/tracesearch/tail.json"})
    kafka = Settings.from_env(
        {"TRACESEARCH_PIPELINE": "kafka", "TRACESEARCH_TAIL_SAMPLING_POLICY_FILE": "/etc/tracesearch/tail.json"}
    )
    assert kafka.tail_sampling_policy_file == "/etc/tracesearch/tail.json"
