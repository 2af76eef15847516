"""The alert store on the real Elasticsearch: the lease's fencing token, and a stale holder's write refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import drop_prefix
from tracesearch.alerting.state import FIRING, AlertState, Transition
from tracesearch.cli import main
from tracesearch.settings import Settings
from tracesearch.storage.contracts import AlertWrite
from tracesearch.storage.es.alert_store import EsAlertStore
from tracesearch.storage.es.client import make_client


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix(es_url: str) -> Iterator[str]:
    name = f"it-alst-{uuid.uuid4().hex[:8]}"
    yield name
    drop_prefix(es_url, name)


def test_tokens_grow_at_each_takeover_and_an_older_token_never_overwrites(es_url: str, prefix: str) -> None:
    clock = Clock()
    settings = Settings.from_env({"TRACESEARCH_ES_URL": es_url, "TRACESEARCH_INDEX_PREFIX": prefix})
    a = EsAlertStore(make_client(settings), prefix, replicas=0, clock=clock)
    b = EsAlertStore(make_client(settings), prefix, replicas=0, clock=clock)
    assert a.acquire_lease("a", 6) == 1
    assert b.acquire_lease("b", 6) is None
    assert a.acquire_lease("a", 6) == 1  # renewed: same token
    alert = AlertState("r", {"alertname": "r"}, FIRING, 2.0, firing_since_ns=1)
    outcome, version = a.write_alert(alert, 1, None)
    assert outcome == AlertWrite.WRITTEN
    clock.now += 7  # a paused past its lease
    assert b.acquire_lease("b", 6) == 2
    [stored] = b.load_alerts().values()
    assert (stored.token, stored.alert.state, stored.version) == (1, FIRING, version)
    assert b.write_alert(alert, 2, stored.version)[0] == AlertWrite.WRITTEN
    assert a.write_alert(alert, 1, version)[0] == AlertWrite.FENCED  # a wakes up: refused
    b.release_lease("b")
    assert a.acquire_lease("a", 6) == 3
    event = Transition("r", alert.fingerprint, alert.labels, "pending", FIRING, 5, 2.0, 5, severity="page")
    a.add_events([event, event], 3)  # idempotent
    [shown] = a.history(None, None, 10)
    assert (shown.state, shown.previous, shown.at_ns) == (FIRING, "pending", 5)
    assert [v.state for v in a.current()] == [FIRING]


def test_alerts_list_on_an_empty_store(
    es_url: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tracesearch alerts list`` reads the real store: the rules table, then that nothing fires."""
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: errors\n    metric: error_rate\n    threshold: 0.1\n")
    monkeypatch.setenv("TRACESEARCH_ALERTS_RULES_FILE", str(path))
    monkeypatch.setenv("TRACESEARCH_ES_URL", es_url)
    monkeypatch.setenv("TRACESEARCH_INDEX_PREFIX", prefix)
    assert main(["alerts", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "RULE" and out[1].split()[0] == "errors"
    assert out[-1] == "no pending or firing alerts"
