"""Sequential GET latency: one client, one keep-alive connection, the full answer read each time."""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Answer:
    seconds: float
    status: int
    body: bytes


def get_each(port: int, paths: Sequence[str], host: str = "127.0.0.1") -> list[Answer]:
    """One request at a time, so a figure is the latency of one request on an otherwise idle service."""
    connection = http.client.HTTPConnection(host, port, timeout=120)
    answers = []
    try:
        for path in paths:
            began = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            answers.append(Answer(time.perf_counter() - began, response.status, body))
    finally:
        connection.close()
    return answers
