"""Pairs parent and child spans of different services into service-graph calls.

Spans arrive in any order and batch. Every newly stored span is remembered for ``wait_s`` as a
possible parent; a child whose parent is not here yet waits the same window. When the window expires
the caller looks the missing parents up in storage (``expire`` → lookup → ``resolve``): see the
package docstring for who counts which call.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tracesearch.model import Span, SpanKind, StatusCode
from tracesearch.servicegraph.model import (
    DATABASE,
    DIRECT,
    MESSAGING,
    NO_LATENCY,
    USER,
    VIRTUAL_NODE,
    Call,
    ParentInfo,
    SpanRef,
)

_CLIENTS = (SpanKind.CLIENT, SpanKind.PRODUCER)
# Attributes naming an uninstrumented peer, in order of preference, with the connection type they imply.
PEER_ATTRIBUTES = (
    ("peer.service", VIRTUAL_NODE),
    ("db.name", DATABASE),
    ("db.system", DATABASE),
    ("messaging.system", MESSAGING),
    ("server.address", VIRTUAL_NODE),
    ("net.peer.name", VIRTUAL_NODE),
)


class Node:
    """The few fields of a span that pairing needs (a span itself is far bigger to keep for seconds)."""

    __slots__ = (
        "duration_ns",
        "error",
        "expires",
        "kind",
        "parent_id",
        "peer",
        "served",
        "service",
        "span_id",
        "start_ns",
        "trace_id",
        "waiting",
    )

    def __init__(self, span: Span, expires: float):
        self.trace_id = span.trace_id
        self.span_id = span.span_id
        self.parent_id = span.parent_span_id
        self.service = span.resource.service_name
        self.kind = span.kind
        self.error = span.status_code is StatusCode.ERROR
        self.start_ns = span.start_ns
        self.duration_ns = span.end_ns - span.start_ns
        self.expires = expires
        self.waiting = False  # a child whose parent has not been seen yet
        self.served = False  # a parent with a child in another service (no virtual peer then)
        self.peer = _peer(span) if span.kind in _CLIENTS else None


def _peer(span: Span) -> tuple[str, str] | None:
    attributes = span.attributes
    for key, connection_type in PEER_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            if "db.system" in attributes or "db.name" in attributes:
                connection_type = DATABASE
            return value, connection_type
    return None


def pair(parent_service: str, parent_kind: SpanKind, parent_ns: int, child: Node) -> Call | None:
    """The call a parent/child pair makes, if they are in different services."""
    if parent_service == child.service:
        return None
    messaging = parent_kind is SpanKind.PRODUCER and child.kind is SpanKind.CONSUMER
    client_ns = parent_ns if parent_kind in _CLIENTS else NO_LATENCY
    return Call(
        parent_service,
        child.service,
        MESSAGING if messaging else DIRECT,
        child.error,
        child.duration_ns,
        client_ns,
        child.start_ns,
    )


def virtual_call(client: Node) -> Call | None:
    if client.peer is None:
        return None
    name, connection_type = client.peer
    return Call(
        client.service, name, connection_type, client.error, client.duration_ns, client.duration_ns, client.start_ns
    )


@dataclass(slots=True)
class Expired:
    """What the window let go: children to look their parent up for, clients to check for a child."""

    orphans: list[Node] = field(default_factory=list)
    clients: list[Node] = field(default_factory=list)
    # Database clients: a database emits no spans of its own, so there is no child to look up.
    databases: list[Node] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.orphans or self.clients or self.databases)

    def extend(self, other: Expired) -> None:
        self.orphans.extend(other.orphans)
        self.clients.extend(other.clients)
        self.databases.extend(other.databases)

    def parent_refs(self) -> list[SpanRef]:
        return [SpanRef(n.trace_id, n.parent_id, n.service, n.start_ns) for n in self.orphans]

    def client_refs(self) -> list[SpanRef]:
        return [SpanRef(n.trace_id, n.span_id, n.service, n.start_ns) for n in self.clients]


@dataclass(slots=True)
class Added:
    calls: list[Call] = field(default_factory=list)
    fresh: list[Span] = field(default_factory=list)  # spans not seen before (duplicates left out)


class Pairer:
    """In-memory pairing within one process; not thread-safe (the stage holds a lock)."""

    def __init__(self, wait_s: float, max_pending: int, clock: Callable[[], float] = time.monotonic):
        self.wait_s = wait_s
        self.max_pending = max_pending
        self.clock = clock
        self._nodes: dict[tuple[str, str], Node] = {}
        self._orphans: dict[tuple[str, str], list[Node]] = {}
        self._order: deque[Node] = deque()
        self.expired_unpaired = 0  # children whose parent was found neither here nor in storage
        self.evicted_early = 0  # spans let go before their window because max_pending was reached

    def __len__(self) -> int:
        return len(self._order)

    def add(self, spans: Iterable[Span]) -> Added:
        added = Added()
        expires = self.clock() + self.wait_s
        nodes, orphans, calls = self._nodes, self._orphans, added.calls
        for span in spans:
            key = (span.trace_id, span.span_id)
            known = nodes.get(key)
            if known is not None and known.kind is span.kind:
                continue  # the same span again: count it once
            node = Node(span, expires)
            added.fresh.append(span)
            self._order.append(node)
            if known is None or node.kind is SpanKind.SERVER:
                nodes[key] = node  # Zipkin's shared spans: the server half is the parent of what follows
            if known is not None:
                known.served = node.served = True  # the two halves of a Zipkin shared span
            if node.parent_id:
                parent = nodes.get((node.trace_id, node.parent_id))
                if parent is None:
                    node.waiting = True
                    orphans.setdefault((node.trace_id, node.parent_id), []).append(node)
                else:
                    self._pair_local(parent, node, calls)
            elif node.kind is SpanKind.SERVER:
                calls.append(Call(USER, node.service, DIRECT, node.error, node.duration_ns, NO_LATENCY, node.start_ns))
            children = orphans.pop(key, None)
            if children is not None:
                for child in children:
                    child.waiting = False
                    self._pair_local(node, child, calls)
        return added

    @staticmethod
    def _pair_local(parent: Node, child: Node, calls: list[Call]) -> None:
        call = pair(parent.service, parent.kind, parent.duration_ns, child)
        if call is not None:
            parent.served = True
            calls.append(call)

    def expire(self, everything: bool = False) -> Expired:
        """Let go of spans whose window ended (all of them with ``everything``, at shutdown), and of
        the oldest ones beyond ``max_pending``."""
        expired = Expired()
        now = self.clock()
        order = self._order
        while order and (everything or order[0].expires <= now or len(order) > self.max_pending):
            node = order.popleft()
            if not everything and node.expires > now:
                self.evicted_early += 1
            self._let_go(node, expired)
        return expired

    def _let_go(self, node: Node, expired: Expired) -> None:
        key = (node.trace_id, node.span_id)
        if self._nodes.get(key) is node:
            del self._nodes[key]
        if node.waiting:
            node.waiting = False
            waiting = self._orphans.get((node.trace_id, node.parent_id))
            if waiting is not None:
                waiting.remove(node)
                if not waiting:
                    del self._orphans[(node.trace_id, node.parent_id)]
            expired.orphans.append(node)
        if node.peer is not None and not node.served:
            (expired.databases if node.peer[1] == DATABASE else expired.clients).append(node)

    def resolve(
        self, expired: Expired, parents: dict[tuple[str, str], ParentInfo], served: set[tuple[str, str]]
    ) -> list[Call]:
        """The calls of expired spans once storage answered: ``parents`` found by (trace id, span id),
        and the (trace id, span id) of expired clients that have a child in another service there."""
        calls: list[Call] = []
        for child in expired.orphans:
            parent = parents.get((child.trace_id, child.parent_id))
            if parent is None:
                self.expired_unpaired += 1
                continue
            call = pair(parent.service, parent.kind, parent.duration_ns, child)
            if call is not None:
                calls.append(call)
        for client in expired.clients:
            if (client.trace_id, client.span_id) not in served:
                call = virtual_call(client)
                if call is not None:
                    calls.append(call)
        calls.extend(call for db in expired.databases if (call := virtual_call(db)) is not None)
        return calls
