from __future__ import annotations

import responses

from demo.query import wait_for_trace

BASE = "http://tracesearch.test"
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _trace(*span_ids: str) -> dict[str, object]:
    return {"data": [{"traceID": TRACE, "spans": [{"spanID": s} for s in span_ids]}]}


@responses.activate
def test_waits_until_every_expected_span_is_returned() -> None:
    url = f"{BASE}/api/traces/{TRACE}"
    responses.get(url, status=404, json={"data": None})
    responses.get(url, json=_trace("00000000000000aa"))
    # Leading zeros dropped, as some Jaeger encoders do.
    responses.get(url, json=_trace("aa", "00000000000000bb"))
    wait = wait_for_trace(BASE, TRACE, {"00000000000000aa", "00000000000000bb"}, timeout=5, interval=0)
    assert wait.complete
    assert len(responses.calls) == 3


@responses.activate
def test_gives_up_after_the_timeout() -> None:
    responses.get(f"{BASE}/api/traces/{TRACE}", status=404, json={"data": None})
    wait = wait_for_trace(BASE, TRACE, {"00000000000000aa"}, timeout=0.2, interval=0.05)
    assert not wait.complete
    assert wait.last_status == 404
