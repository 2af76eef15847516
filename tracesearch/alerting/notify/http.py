"""What every notifier shares: one POST of JSON with a timeout, the answer sorted into delivered, worth
retrying (5xx, 429, timeouts, connection errors) or not (other 4xx), and URLs that are safe to log.

A Slack incoming-webhook URL *is* its secret (``/services/T…/B…/<token>``), and generic webhooks often
carry a token in their path or query, so logs and error texts name a notifier by its redacted URL only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

from tracesearch.alerting.notify.model import Group

BODY_LOGGED = 500  # characters of a refusing receiver's answer kept in the log


class DeliveryFailed(Exception):
    """One attempt failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    kind: str  # the /metrics label: webhook, slack or alertmanager
    target: str  # the redacted URL, for logs

    def send(self, group: Group) -> None:
        """Deliver one group in one call, or raise ``DeliveryFailed``."""


def redact(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/secret?x=1`` → ``https://hooks.slack.com/…``: scheme, host
    and port only (no user, path or query), which is what a log needs to tell receivers apart."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    suffix = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{suffix}"


def finite(value: float) -> float | None:
    """JSON has no NaN or infinity; a receiver would refuse the whole body for one."""
    return value if math.isfinite(value) else None


class HttpNotifier:
    """POST JSON to one URL with a session of its own (connections reused between calls)."""

    kind = "webhook"

    def __init__(self, url: str, timeout_s: float, session: requests.Session | None = None) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._session = session or requests.Session()
        self.target = redact(url)

    def endpoint(self) -> str:
        return self._url

    def payload(self, group: Group) -> Any:
        raise NotImplementedError

    def send(self, group: Group) -> None:
        self.post(self.payload(group))

    def post(self, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"}
        try:
            response = self._session.post(self.endpoint(), data=data, headers=headers, timeout=self._timeout_s)
        except requests.Timeout as error:
            raise DeliveryFailed(f"{type(error).__name__} after {self._timeout_s:g}s", retryable=True) from None
        except requests.RequestException as error:
            # The exception's text quotes the URL (path and token included): only its type is kept.
            raise DeliveryFailed(f"{type(error).__name__} (no answer)", retryable=True) from None
        if 200 <= response.status_code < 300:
            return
        retryable = response.status_code >= 500 or response.status_code == 429
        text = " ".join(response.text[:BODY_LOGGED].split())
        raise DeliveryFailed(f"HTTP {response.status_code}: {text}", retryable=retryable)


TraceLink = Callable[[str, str], str]  # (search_url, trace_id) -> a link to that trace


def trace_link_for(template: str) -> TraceLink:
    """Links to one trace: ``template`` with ``{trace_id}`` replaced when set; else derived from the search link:
    a Grafana Explore link gets the same data source with the trace id as its query, a native API link
    gets the Jaeger API's ``/api/traces/{id}`` on the same service."""

    def link(search_url: str, trace_id: str) -> str:
        if template:
            return template.replace("{trace_id}", trace_id)
        return _grafana_trace(search_url, trace_id) or _native_trace(search_url, trace_id)

    return link


def _native_trace(search_url: str, trace_id: str) -> str:
    parts = urlsplit(search_url)
    prefix = parts.path.split("/api/", 1)[0] if "/api/" in parts.path else ""
    return urlunsplit((parts.scheme, parts.netloc, f"{prefix}/api/traces/{trace_id}", "", ""))


def _grafana_trace(search_url: str, trace_id: str) -> str | None:
    """Grafana's Explore state is JSON in ``left`` (before 10) or ``panes``: every query becomes the trace id."""
    parts = urlsplit(search_url)
    if not parts.path.rstrip("/").endswith("/explore"):
        return None
    query = parse_qs(parts.query)
    for name in ("panes", "left"):
        if name in query:
            try:
                state = json.loads(query[name][0])
            except ValueError:
                return None
            _set_queries(state, trace_id)
            rest = {key: values[0] for key, values in query.items() if key != name}
            encoded = urlencode({**rest, name: json.dumps(state, separators=(",", ":"))})
            return urlunsplit((parts.scheme, parts.netloc, parts.path, encoded, ""))
    return None


def _set_queries(state: Any, trace_id: str) -> None:
    if isinstance(state, dict):
        for key, value in state.items():
            if key == "queries" and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        item["query"] = trace_id
                        item["queryType"] = "traceql"
            else:
                _set_queries(value, trace_id)
    elif isinstance(state, list):
        for item in state:
            _set_queries(item, trace_id)
