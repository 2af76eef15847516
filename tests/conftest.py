"""Options shared by every test tier."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/goldens/ from what the code sends now (review the diff before committing it)",
    )


# hypothesis (the codec properties in tests/unit, and schemathesis's cases in tests/integration/test_api_fuzz.py)
# runs under one profile: "ci", the default, is bounded and derandomized, so `make test` runs the same cases
# every time in a known time; HYPOTHESIS_PROFILE=explore runs many more, seeded at random, to look for new
# failures (hypothesis prints the seed and a @reproduce_failure blob for what it finds).
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("explore", settings.get_profile("ci"), max_examples=1000, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# The time each fuzzing part adds to the run, printed at its end (`make test` is bounded: CI has 90 minutes).
FUZZ_PARTS = {
    "tests/integration/test_api_fuzz.py": "API fuzz (schemathesis, integration)",
    "tests/unit/codecs/test_properties.py": "codec properties (hypothesis, unit)",
}
_fuzz_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    part = FUZZ_PARTS.get(report.nodeid.split("::")[0])
    if part:
        _fuzz_seconds[part] = _fuzz_seconds.get(part, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for part, seconds in _fuzz_seconds.items():
        terminalreporter.write_line(f"fuzzing: {part}: {seconds:.1f} s")
