"""tracesearch-instrument installs as a user's service would install it: alone, from its wheel,
into a fresh virtual environment, pulling in the OpenTelemetry SDK and none of the server's
dependencies; and beside the server wheel, where both halves of the `tracesearch` namespace import.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.integration.test_wheel_install import build_wheel, checked, copy_sources, install_in_fresh_venv

SERVER_ONLY = {"flask", "gunicorn", "elasticsearch", "kafka-python", "tracesearch"}
LIST_DISTRIBUTIONS = (
    "import json, importlib.metadata as m; "
    "print(json.dumps(sorted(d.metadata['Name'].lower() for d in m.distributions())))"
)
ENTRY_POINTS = (
    "import json, importlib.metadata as m; "
    "print(json.dumps({g: [e.value for e in m.entry_points(group=g) if e.name == 'tracesearch'] "
    "for g in ('opentelemetry_distro', 'opentelemetry_configurator', 'opentelemetry_propagator')}))"
)


def build_instrument_wheel(tmp: Path) -> Path:
    sources = copy_sources(tmp / "src") / "instrument"
    checked([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(sources)], tmp)
    (wheel,) = (tmp / "dist").glob("tracesearch_instrument-*.whl")
    return wheel


def test_alone_it_brings_the_sdk_and_nothing_of_the_server(tmp_path: Path) -> None:
    python = install_in_fresh_venv(build_instrument_wheel(tmp_path), tmp_path / "venv")
    installed = set(json.loads(checked([str(python), "-c", LIST_DISTRIBUTIONS], tmp_path)))
    assert {"opentelemetry-sdk", "opentelemetry-instrumentation-flask", "ecs-logging"} <= installed
    assert not SERVER_ONLY & installed
    smoke = "import tracesearch.instrument as t; t.TracesearchPropagator(); t.EcsFormatter()"
    checked([str(python), "-c", smoke], tmp_path)
    assert (python.parent / "opentelemetry-instrument").is_file()
    assert json.loads(checked([str(python), "-c", ENTRY_POINTS], tmp_path)) == {
        "opentelemetry_distro": ["tracesearch.instrument.distro:TracesearchDistro"],
        "opentelemetry_configurator": ["tracesearch.instrument.distro:TracesearchConfigurator"],
        "opentelemetry_propagator": ["tracesearch.instrument.propagation:TracesearchPropagator"],
    }


def test_beside_the_server_both_halves_import(tmp_path: Path) -> None:
    server = build_wheel(tmp_path / "server")
    python = install_in_fresh_venv(server, tmp_path / "venv")
    installed = set(json.loads(checked([str(python), "-c", LIST_DISTRIBUTIONS], tmp_path)))
    assert not {name for name in installed if name.startswith("opentelemetry-sdk")}, "the server pulls in the SDK"
    instrument = build_instrument_wheel(tmp_path / "instrument")
    checked([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(instrument)], tmp_path)
    checked([str(python), "-c", "import tracesearch.app, tracesearch.instrument"], tmp_path)
