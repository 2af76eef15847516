"""Random traces with a known topology, a brute-force answer from the raw spans, and a span store
standing in for Elasticsearch (what the other processes stored)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tracesearch.model import AttrValue, Resource, Scope, Span, SpanKind, StatusCode
from tracesearch.servicegraph.model import ParentInfo, SpanRef

SERVICES = ("web", "api", "auth", "billing", "worker")
MINUTE_NS = 60_000_000_000
T0 = 1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % MINUTE_NS
_RESOURCES = {name: Resource({"service.name": name}, name) for name in SERVICES}
PEERS = {"peer.service": "payments-gw", "db.system": "postgresql", "server.address": "cache.internal"}


def span(
    trace_id: str,
    span_id: str,
    service: str,
    kind: SpanKind,
    parent: str = "",
    error: bool = False,
    start_ns: int = T0,
    duration_ns: int = 1_000_000,
    attributes: Mapping[str, AttrValue] | None = None,
    name: str = "op",
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        start_ns=start_ns,
        end_ns=start_ns + duration_ns,
        resource=_RESOURCES.get(service) or Resource({"service.name": service}, service),
        scope=Scope(),
        parent_span_id=parent,
        kind=kind,
        status_code=StatusCode.ERROR if error else StatusCode.UNSET,
        attributes=dict(attributes or {}),
    )


@dataclass
class TraceBuilder:
    rng: random.Random
    trace_id: str
    t0: int = T0
    spans: list[Span] = field(default_factory=list)

    def add(
        self, service: str, kind: SpanKind, parent: Span | None, attributes: Mapping[str, AttrValue] | None = None
    ) -> Span:
        made = span(
            self.trace_id,
            f"{len(self.spans) + 1:016x}",
            service,
            kind,
            parent.span_id if parent else "",
            error=self.rng.random() < 0.2,
            start_ns=self.t0 + self.rng.randrange(0, 3 * MINUTE_NS),
            duration_ns=int(self.rng.lognormvariate(15, 1.5)) + 1,
            attributes=attributes,
        )
        self.spans.append(made)
        return made

    def grow(self, node: Span, depth: int) -> None:
        """Children of ``node``: calls into other services (client/server, producer/consumer, a
        server directly under a server), local work, and calls to uninstrumented peers."""
        if depth == 0:
            return
        for _ in range(self.rng.randrange(0, 3)):
            other = self.rng.choice(SERVICES)
            shape = self.rng.randrange(6)
            if shape == 0:
                client = self.add(node.service_name, SpanKind.CLIENT, node, attributes={"peer.service": other})
                self.grow(self.add(other, SpanKind.SERVER, client), depth - 1)
            elif shape == 1:
                kafka = {"messaging.system": "kafka"}
                producer = self.add(node.service_name, SpanKind.PRODUCER, node, attributes=kafka)
                self.grow(self.add(other, SpanKind.CONSUMER, producer), depth - 1)
            elif shape == 2:
                self.grow(self.add(other, SpanKind.SERVER, node), depth - 1)
            elif shape == 3:
                self.grow(self.add(node.service_name, SpanKind.INTERNAL, node), depth - 1)
            else:
                key = self.rng.choice(sorted(PEERS))
                self.add(node.service_name, SpanKind.CLIENT, node, attributes={key: PEERS[key]})


def random_traces(seed: int, count: int, t0: int = T0) -> list[Span]:
    rng = random.Random(seed)
    spans: list[Span] = []
    for n in range(count):
        builder = TraceBuilder(rng, f"{seed:08x}{n:024x}", t0)
        root_kind = SpanKind.SERVER if rng.random() < 0.8 else SpanKind.CONSUMER
        builder.grow(builder.add(rng.choice(SERVICES), root_kind, None), depth=4)
        spans.extend(builder.spans)
    return spans


def brute_force(spans: Sequence[Span]) -> tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str, str]]]:
    """(calls, errors) per (client, server, connection_type), straight from the definition."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    calls: Counter[tuple[str, str, str]] = Counter()
    errors: Counter[tuple[str, str, str]] = Counter()
    served = set()

    def count(edge: tuple[str, str, str], error: bool) -> None:
        calls[edge] += 1
        errors[edge] += error

    for child in spans:
        if not child.parent_span_id:
            if child.kind == SpanKind.SERVER:
                count(("user", child.service_name, ""), child.status_code == StatusCode.ERROR)
            continue
        parent = by_id.get((child.trace_id, child.parent_span_id))
        if parent is None:
            continue
        remote = parent.kind in (SpanKind.CLIENT, SpanKind.PRODUCER) and child.kind in (
            SpanKind.SERVER,
            SpanKind.CONSUMER,
        )
        if parent.service_name == child.service_name and not remote:
            continue  # local work within one service
        served.add((parent.trace_id, parent.span_id))
        messaging = parent.kind == SpanKind.PRODUCER and child.kind == SpanKind.CONSUMER
        edge = (parent.service_name, child.service_name, "messaging_system" if messaging else "")
        count(edge, child.status_code == StatusCode.ERROR)
    for client in spans:
        if client.kind not in (SpanKind.CLIENT, SpanKind.PRODUCER) or (client.trace_id, client.span_id) in served:
            continue
        for key, kind in (
            ("peer.service", "virtual_node"),
            ("db.system", "database"),
            ("messaging.system", "messaging_system"),
            ("server.address", "virtual_node"),
        ):
            if key in client.attributes:
                count((client.service_name, str(client.attributes[key]), kind), client.status_code == StatusCode.ERROR)
                break
    return calls, errors


class StoreLookup:
    """SpanLookup over the spans "Elasticsearch" holds, answering as EsSpanLookup does."""

    def __init__(self) -> None:
        self.spans: dict[tuple[str, str, SpanKind], Span] = {}
        self.parent_queries = 0

    def store(self, spans: Sequence[Span]) -> None:
        for s in spans:
            self.spans[(s.trace_id, s.span_id, s.kind)] = s

    def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
        self.parent_queries += 1
        wanted = {(r.trace_id, r.span_id) for r in refs}
        found: dict[tuple[str, str], ParentInfo] = {}
        for (trace_id, span_id, kind), s in self.spans.items():
            if (trace_id, span_id) in wanted and ((trace_id, span_id) not in found or kind == SpanKind.SERVER):
                found[(trace_id, span_id)] = ParentInfo(s.service_name, kind, s.end_ns - s.start_ns)
        return found

    def served(self, refs: Sequence[SpanRef]) -> set[tuple[str, str]]:
        service = {(r.trace_id, r.span_id): r.service for r in refs}
        served = set()
        for s in self.spans.values():
            shared = [(s.trace_id, s.span_id)] if s.kind == SpanKind.SERVER else []
            for key in [(s.trace_id, s.parent_span_id), *shared]:
                server = s.kind in (SpanKind.SERVER, SpanKind.CONSUMER)
                if key in service and (service[key] != s.service_name or server):
                    served.add(key)
        return served
