"""Unit-tier fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracesearch.codecs import otlp_proto


@pytest.fixture(autouse=True)
def python_decoder_unless_asked() -> Iterator[None]:
    """``Components`` turns the compiled core's decoder on process-wide (one setting per process in a
    deployment); here a test that builds Components must not switch it on for the tests after it."""
    yield
    otlp_proto.use_native(None)
