"""A cheap load generator: pre-encoded bodies posted over keep-alive ``http.client`` connections.

The machine's cores are shared by Elasticsearch, the service and this generator, so each request
costs the generator only a send, a read and a comparison of the answer with the one expected bytes.
"""

from __future__ import annotations

import http.client
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

# (status, body) -> None when the answer is the expected success, else a description of what is wrong.
Check = Callable[[int, bytes], str | None]
MAX_ATTEMPTS = 3


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_s: list[float]
    failures: list[str] = field(default_factory=list)
    reconnects: int = 0
    # Indices of the bodies whose answer was not the expected success (post_all only).
    failed: list[int] = field(default_factory=list)


def post_all(
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: Sequence[bytes],
    concurrency: int,
    check: Check,
    host: str = "127.0.0.1",
    on_answer: Callable[[int], None] | None = None,
) -> LoadResult:
    """POST every body once, ``concurrency`` requests in flight; wall time from first send to last answer.

    ``on_answer`` is told the index of each body answered (a progress bar), from the sending threads."""
    next_index = itertools.count().__next__  # a C call: atomic under the GIL, no lock needed
    latencies = [0.0] * len(bodies)
    failures: list[str] = []
    failed: list[int] = []
    reconnects = [0]

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=300)
        try:
            while (index := next_index()) < len(bodies):
                began = time.perf_counter()
                status, answer = _post(connection, path, bodies[index], headers, reconnects)
                latencies[index] = time.perf_counter() - began
                problem = check(status, answer)
                if problem is not None:
                    failures.append(f"request {index}: {problem}")
                    failed.append(index)
                if on_answer is not None:
                    on_answer(index)
        except Exception as exc:  # a dead worker must fail the run, not shrink the load silently
            failures.append(f"load thread died: {exc!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(len(bodies), time.perf_counter() - began, latencies, failures, reconnects[0], failed)


def post_stream(
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: Iterator[bytes],
    concurrency: int,
    check: Check,
    host: str = "127.0.0.1",
) -> LoadResult:
    """POST bodies while they are being made (too many to hold at once): the caller's thread produces,
    ``concurrency`` threads send. For loading data, not for timing."""
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=2 * concurrency)
    failures: list[str] = []
    reconnects = [0]
    tick = itertools.count().__next__  # atomic, unlike += on a shared int

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=300)
        try:
            while (body := pending.get()) is not None:
                status, answer = _post(connection, path, body, headers, reconnects)
                tick()
                problem = check(status, answer)
                if problem is not None:
                    failures.append(problem)
        except Exception as exc:
            failures.append(f"load thread died: {exc!r}")
            while pending.get() is not None:  # keep draining so the producer never blocks forever
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        for body in bodies:
            pending.put(body)
    finally:
        for _ in threads:
            pending.put(None)
        for thread in threads:
            thread.join()
    return LoadResult(tick(), time.perf_counter() - began, [], failures, reconnects[0])


def _post(
    connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str], reconnects: list[int]
) -> tuple[int, bytes]:
    # Resending is safe: every span has a deterministic id, so a repeated batch stores nothing twice.
    for attempt in range(MAX_ATTEMPTS):
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, ConnectionError):
            if attempt == MAX_ATTEMPTS - 1:
                raise
            connection.close()
            reconnects[0] += 1
    raise AssertionError("unreachable")
