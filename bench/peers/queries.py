"""Query latency through each system's own API, over the corpus it has just stored (force-merged).

Four kinds: a trace by id (checked whole), a service + tag search over the hour that holds the corpus,
the service list, the dependency links of that hour. ``jaeger`` is the Jaeger query API (tracesearch and
Jaeger v2 serve it), ``zipkin`` Zipkin's v2 API. The same seeded choices go to every system.
"""

from __future__ import annotations

import json
import random
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from bench import latency, stats
from bench.peers.corpus import Corpus

KINDS = ("trace_by_id", "search", "services", "dependencies")
LABELS = {
    "trace_by_id": "trace by id",
    "search": "service + tag search, 1 h",
    "services": "services",
    "dependencies": "dependencies, 1 h",
}
# String-valued tags every system stores the same way (Zipkin tags are strings).
SEARCH_TAGS = (
    ("http.request.method", "POST"),
    ("db.system", "postgresql"),
    ("app.tenant", "tenant-07"),
    ("http.route", "/api/cart"),
)
LIMIT = 20
HOUR_MS = 3_600_000
NS_PER_MS = 1_000_000


@dataclass
class QueryStats:
    p50_ms: float
    p95_ms: float
    requests: int
    # Answers that were not what the corpus says they must be (HTTP error, a trace not whole, ...).
    wrong: int
    mean_items: float
    first_problem: str = ""


@dataclass(frozen=True)
class Request:
    path: str
    # The answer's body -> (items it holds, what is wrong with it or "").
    check: Callable[[bytes], tuple[int, str]]


def requests(dialect: str, kind: str, corpus: Corpus, rng: random.Random, n: int) -> list[Request]:
    make = _JAEGER if dialect == "jaeger" else _ZIPKIN
    return [make[kind](corpus, rng) for _ in range(n)]


def measure(port: int, dialect: str, corpus: Corpus, seed: int, n: int, warmup: int) -> dict[str, QueryStats]:
    out = {}
    for kind in KINDS:
        rng = random.Random(f"{seed}-{kind}")
        latency.get_each(port, [r.path for r in requests(dialect, kind, corpus, rng, warmup)])
        measured = requests(dialect, kind, corpus, rng, n)
        answers = latency.get_each(port, [r.path for r in measured])
        items, problems = [], []
        for request, answer in zip(measured, answers, strict=True):
            if answer.status != 200:
                problems.append(f"GET {request.path}: HTTP {answer.status} {answer.body[:200]!r}")
                continue
            count, problem = request.check(answer.body)
            items.append(count)
            if problem:
                problems.append(f"GET {request.path}: {problem}")
        seconds = [a.seconds for a in answers]
        out[kind] = QueryStats(
            stats.median(seconds) * 1000,
            stats.percentile(seconds, 95) * 1000,
            len(answers),
            len(problems),
            sum(items) / len(items) if items else 0.0,
            problems[0] if problems else "",
        )
    return out


def _window_ms(corpus: Corpus) -> tuple[int, int]:
    end = corpus.anchor_ns // NS_PER_MS
    return end - HOUR_MS, end


def _trace_id(corpus: Corpus, rng: random.Random) -> tuple[str, int]:
    trace_id = rng.choice(sorted(corpus.by_id))
    return trace_id, corpus.by_id[trace_id]


def _services_check(corpus: Corpus, names: list[str]) -> tuple[int, str]:
    wrong = "" if sorted(names) == sorted(corpus.services) else f"services {sorted(names)}"
    return len(names), wrong


def _jaeger_by_id(corpus: Corpus, rng: random.Random) -> Request:
    trace_id, size = _trace_id(corpus, rng)

    def check(body: bytes) -> tuple[int, str]:
        spans = sum(len(t["spans"]) for t in json.loads(body)["data"])
        return spans, "" if spans == size else f"{spans} of {size} spans"

    return Request(f"/api/traces/{trace_id}", check)


def _jaeger_search(corpus: Corpus, rng: random.Random) -> Request:
    start, end = _window_ms(corpus)
    key, value = rng.choice(SEARCH_TAGS)
    params = {
        "service": rng.choice(corpus.services),
        "tags": json.dumps({key: value}),
        "start": start * 1000,
        "end": end * 1000,
        "limit": LIMIT,
    }
    return Request("/api/traces?" + urllib.parse.urlencode(params), lambda b: (len(json.loads(b)["data"]), ""))


def _jaeger_services(corpus: Corpus, rng: random.Random) -> Request:
    return Request("/api/services", lambda b: _services_check(corpus, json.loads(b)["data"]))


def _jaeger_dependencies(corpus: Corpus, rng: random.Random) -> Request:
    _, end = _window_ms(corpus)
    path = f"/api/dependencies?endTs={end}&lookback={HOUR_MS}"
    return Request(path, lambda b: (len(json.loads(b)["data"] or []), ""))


def _zipkin_by_id(corpus: Corpus, rng: random.Random) -> Request:
    trace_id, size = _trace_id(corpus, rng)

    def check(body: bytes) -> tuple[int, str]:
        spans = len(json.loads(body))
        return spans, "" if spans == size else f"{spans} of {size} spans"

    return Request(f"/api/v2/trace/{trace_id}", check)


def _zipkin_search(corpus: Corpus, rng: random.Random) -> Request:
    _, end = _window_ms(corpus)
    key, value = rng.choice(SEARCH_TAGS)
    params = {
        "serviceName": rng.choice(corpus.services),
        "annotationQuery": f"{key}={value}",
        "endTs": end,
        "lookback": HOUR_MS,
        "limit": LIMIT,
    }
    return Request("/api/v2/traces?" + urllib.parse.urlencode(params), lambda b: (len(json.loads(b)), ""))


def _zipkin_services(corpus: Corpus, rng: random.Random) -> Request:
    return Request("/api/v2/services", lambda b: _services_check(corpus, json.loads(b)))


def _zipkin_dependencies(corpus: Corpus, rng: random.Random) -> Request:
    _, end = _window_ms(corpus)
    return Request(f"/api/v2/dependencies?endTs={end}&lookback={HOUR_MS}", lambda b: (len(json.loads(b)), ""))


Factory = Callable[[Corpus, random.Random], Request]
_JAEGER: dict[str, Factory] = {
    "trace_by_id": _jaeger_by_id,
    "search": _jaeger_search,
    "services": _jaeger_services,
    "dependencies": _jaeger_dependencies,
}
_ZIPKIN: dict[str, Factory] = {
    "trace_by_id": _zipkin_by_id,
    "search": _zipkin_search,
    "services": _zipkin_services,
    "dependencies": _zipkin_dependencies,
}
