"""Readiness probes and the polling loop around them (stdlib only)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http import HTTPStatus


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    return http_status(url, timeout) == HTTPStatus.OK


def http_json(url: str, timeout: float = 5.0) -> object:
    """GET a JSON document; None when unreachable, not 200 or not JSON."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != HTTPStatus.OK:
                return None
            parsed: object = json.loads(response.read())
            return parsed
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    still_starting: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``ready`` until it is true or ``timeout`` seconds have passed.

    ``still_starting`` lets the caller give up early, e.g. when the process
    being waited for has already died: waiting out the full timeout would
    only delay the error message.
    """
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if still_starting is not None and not still_starting():
            return ready()
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
