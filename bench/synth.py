"""Synthetic but realistic traces, as tracesearch's own ``Span`` model.

Services call each other over HTTP and query databases; every span carries about fifteen attributes of
mixed types (HTTP or database semantic conventions, a 100-character note, numbers, booleans, an
array), one span in ten has an event, one in twenty-five is an error. Everything comes from a seeded
``random.Random``, so a run is reproducible and the ids of the big traces can be listed up front.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from tracesearch.model import Attributes, Event, Resource, Scope, Span, SpanKind, StatusCode

NS_PER_MS = 1_000_000
SERVICES = ("frontend", "checkout", "inventory", "payments", "shipping", "search")
# Words of the notes, so that a free-text search has hits of every frequency.
_WORD_TEXT = (
    "customer parcel warehouse invoice refund shipment coupon basket discount delivery courier pallet "
    "timeout retry backoff fallback replica leader shard cache miss hit eviction queue consumer lag "
    "checkout payment card declined approved fraud review manual batch nightly import export label "
    "customs tariff express standard locker pickup weekend holiday promotion bundle voucher loyalty "
    "tier gold silver bronze region north south east west central harbour airport depot hub"
)
WORDS = _WORD_TEXT.split()
ROUTES = ("/api/cart", "/api/cart/items", "/api/orders/{id}", "/api/products", "/api/products/{id}", "/api/pay")
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
DB_SYSTEMS = (("postgresql", "orders"), ("redis", "0"), ("mongodb", "catalog"), ("postgresql", "billing"))
DB_OPERATIONS = ("SELECT", "INSERT", "UPDATE", "GET", "SET", "find")
TABLES = ("orders", "order_items", "customers", "stock", "prices", "sessions")
FUNCTIONS = ("render_page", "apply_discounts", "reserve_stock", "compute_tax", "serialize", "validate")
ERRORS = (("connection refused", "ConnectionError"), ("deadline exceeded", "TimeoutError"))
OK_STATUSES = (200, 200, 200, 200, 201, 204, 304, 404)
NOTES = 4096


@dataclass(frozen=True)
class Shape:
    """How a generator spreads its traces: how many spans each and over which time range."""

    services: Sequence[str]
    min_spans: int = 5
    max_spans: int = 40


class _Node:
    """What a child needs to know of its parent while a trace is built."""

    __slots__ = ("end", "flavor", "service", "span_id", "start", "target")

    def __init__(self, service: str, flavor: str, span_id: str, start: int, end: int, target: str) -> None:
        self.service = service
        self.flavor = flavor
        self.span_id = span_id
        self.start = start
        self.end = end
        self.target = target


class TraceFactory:
    """Builds traces one at a time; ``trace(n, start_ns)`` returns the ``n`` spans of a new trace."""

    def __init__(self, services: Sequence[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.services = tuple(services)
        self.resources = {s: _resource(s, i) for i, s in enumerate(self.services)}
        self.scopes = {s: Scope(f"io.opentelemetry.{s}", "1.27.0") for s in self.services}
        # Pre-built notes: drawing fifteen words per span would cost more than the rest of the span.
        self.notes = [_note(self.rng) for _ in range(NOTES)]

    def hex_id(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits) | 1:0{bits // 4}x}"

    def trace(self, n: int, start_ns: int, trace_id: str | None = None) -> list[Span]:
        rng = self.rng
        trace_id = trace_id or self.hex_id(128)
        root_ms = min(rng.lognormvariate(math.log(60), 1.1), 20_000.0)
        root = _Node(self.services[0], "server", self.hex_id(64), start_ns, start_ns + int(root_ms * NS_PER_MS), "")
        nodes = [root]
        spans = [self._span(trace_id, root, "")]
        for _ in range(n - 1):
            parent = nodes[rng.randrange(len(nodes))]
            node = self._child(parent)
            nodes.append(node)
            spans.append(self._span(trace_id, node, parent.span_id))
        return spans

    def _child(self, parent: _Node) -> _Node:
        rng = self.rng
        if parent.flavor == "client":
            service, flavor = parent.target, "server"
        else:
            service, flavor = parent.service, rng.choice(("client", "client", "db", "db", "internal"))
        room = parent.end - parent.start
        start = parent.start + int(room * rng.random() * 0.4)
        end = start + max(1000, int((parent.end - start) * rng.uniform(0.05, 0.95)))
        target = rng.choice(self.services[1:]) if flavor == "client" and len(self.services) > 1 else ""
        return _Node(service, flavor, self.hex_id(64), start, end, target)

    def _span(self, trace_id: str, node: _Node, parent_id: str) -> Span:
        rng = self.rng
        error = rng.random() < 0.04
        attributes = self._common(node)
        name, kind = _FLAVORS[node.flavor](rng, attributes, node, error)
        span = Span(
            trace_id,
            node.span_id,
            name,
            node.start,
            node.end,
            self.resources[node.service],
            self.scopes[node.service],
            parent_id,
            kind,
            StatusCode.ERROR if error else StatusCode.UNSET,
            rng.choice(ERRORS)[0] if error else "",
            attributes,
        )
        if rng.random() < 0.1:
            span.events.append(_event(rng, node, error))
        return span

    def _common(self, node: _Node) -> Attributes:
        rng = self.rng
        return {
            "thread.id": rng.randrange(1, 64),
            "thread.name": f"worker-{rng.randrange(8)}",
            "app.note": self.notes[rng.randrange(NOTES)],
            "app.tenant": f"tenant-{rng.randrange(50):02d}",
            "app.sampled": rng.random() < 0.5,
            "app.ratio": round(rng.random(), 4),
            "app.retry_count": rng.randrange(3),
            "app.feature_flags": rng.sample(("new-cart", "fast-pay", "dark-mode", "beta-search"), 2),
        }


def _resource(service: str, index: int) -> Resource:
    attributes: Attributes = {
        "service.name": service,
        "service.version": f"2.{index}.7",
        "service.instance.id": f"{service}-7d9f-{index}",
        "host.name": f"node-{index % 3}",
        "deployment.environment.name": "production",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.27.0",
    }
    return Resource(attributes, service)


def _note(rng: random.Random) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < 110:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:100]


def _server(rng: random.Random, attributes: Attributes, node: _Node, error: bool) -> tuple[str, SpanKind]:
    method, route = rng.choice(METHODS), rng.choice(ROUTES)
    attributes.update(
        {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": rng.choice((500, 503)) if error else rng.choice(OK_STATUSES),
            "url.path": route.replace("{id}", str(rng.randrange(10_000))),
            "url.scheme": "http",
            "server.port": 8080,
            "client.address": f"10.0.{rng.randrange(4)}.{rng.randrange(1, 255)}",
        }
    )
    return f"{method} {route}", SpanKind.SERVER


def _client(rng: random.Random, attributes: Attributes, node: _Node, error: bool) -> tuple[str, SpanKind]:
    method = rng.choice(METHODS)
    attributes.update(
        {
            "http.request.method": method,
            "url.full": f"http://{node.target}:8080{rng.choice(ROUTES)}",
            "http.response.status_code": 503 if error else rng.choice(OK_STATUSES),
            "server.address": node.target,
            "server.port": 8080,
            "network.protocol.version": "1.1",
        }
    )
    return method, SpanKind.CLIENT


def _db(rng: random.Random, attributes: Attributes, node: _Node, error: bool) -> tuple[str, SpanKind]:
    system, namespace = rng.choice(DB_SYSTEMS)
    operation, table = rng.choice(DB_OPERATIONS), rng.choice(TABLES)
    attributes.update(
        {
            "db.system": system,
            "db.namespace": namespace,
            "db.operation.name": operation,
            "db.collection.name": table,
            "db.query.text": f"{operation} * FROM {table} WHERE id = ?",
            "server.address": f"{system}.internal",
            "db.response.returned_rows": rng.randrange(200),
        }
    )
    return f"{operation} {table}", SpanKind.CLIENT


def _internal(rng: random.Random, attributes: Attributes, node: _Node, error: bool) -> tuple[str, SpanKind]:
    function = rng.choice(FUNCTIONS)
    attributes.update(
        {
            "code.function.name": function,
            "code.file.path": f"/app/{node.service}/{function}.py",
            "code.line.number": rng.randrange(10, 900),
            "app.items": rng.randrange(1, 40),
            "app.cost": round(rng.uniform(0.1, 300.0), 2),
            "app.cached": rng.random() < 0.3,
            "app.region": rng.choice(("eu-west", "eu-central", "us-east")),
        }
    )
    return function, SpanKind.INTERNAL


_FLAVORS = {"server": _server, "client": _client, "db": _db, "internal": _internal}


def _event(rng: random.Random, node: _Node, error: bool) -> Event:
    at = node.start + (node.end - node.start) // 2
    if error:
        message, kind = rng.choice(ERRORS)
        return Event(at, "exception", {"exception.type": kind, "exception.message": message})
    return Event(at, "cache.miss", {"cache.key": f"cart:{rng.randrange(10_000)}", "cache.shard": rng.randrange(16)})


def traces(
    factory: TraceFactory, total_spans: int, start_ns: int, end_ns: int, shape: Shape | None = None
) -> Iterator[list[Span]]:
    """Traces of ``shape.min_spans``..``shape.max_spans`` spans, starting uniformly in [start, end),
    until exactly ``total_spans`` spans were produced (the last trace is cut short)."""
    shape = shape or Shape(factory.services)
    rng = factory.rng
    left = total_spans
    while left > 0:
        n = min(left, rng.randint(shape.min_spans, shape.max_spans))
        left -= n
        yield factory.trace(n, rng.randrange(start_ns, end_ns))


def arrival_order(traces: Iterable[list[Span]]) -> list[Span]:
    """Every span of these traces in the order live traffic delivers them, each as it ends: the spans of
    the traces in flight interleaved (an SDK exports a span when it ends, not its trace when done)."""
    by_end = (sorted(trace, key=_end) for trace in traces)
    return list(heapq.merge(*by_end, key=_end))


def _end(span: Span) -> int:
    return span.end_ns


def batches(spans: Iterator[Span], size: int) -> Iterator[list[Span]]:
    """Consecutive spans in batches of ``size``, as an SDK's batch processor sends them."""
    batch: list[Span] = []
    for span in spans:
        batch.append(span)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
