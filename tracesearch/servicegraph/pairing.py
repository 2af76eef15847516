"""Pairs parent and child spans into service-graph calls (see ``pair`` for which pairs are calls).

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
from typing import Final

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
_SERVERS = (SpanKind.SERVER, SpanKind.CONSUMER)
# Attributes naming an uninstrumented peer, in order of preference, with the connection type they imply.
PEER_ATTRIBUTES = (
    ("peer.service", VIRTUAL_NODE),
    ("db.name", DATABASE),
    ("db.system", DATABASE),
    ("messaging.system", MESSAGING),
    ("server.address", VIRTUAL_NODE),
    ("net.peer.name", VIRTUAL_NODE),
)


# What pairing keeps of a span for the wait window, as a plain tuple: a span itself is far bigger to
# keep for seconds, and building a tuple instead of an object with attributes made ``add`` ~15 %
# cheaper (it runs for every stored span). Fields, by index:
TRACE: Final = 0
SPAN: Final = 1
PARENT: Final = 2
SERVICE: Final = 3
KIND: Final = 4
ERROR: Final = 5
START: Final = 6
DURATION: Final = 7
PEER: Final = 8
Node = tuple[str, str, str, str, SpanKind, bool, int, int, "tuple[str, str] | None"]


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
    """The call a parent/child pair makes: any pair across two services, and a client (producer) with
    a server (consumer) child in its own service, a service calling itself over the network (Tempo
    draws that as a loop on the node). Other pairs within one service are local work, not calls."""
    service = child[SERVICE]
    if parent_service == service and not (parent_kind in _CLIENTS and child[KIND] in _SERVERS):
        return None
    messaging = parent_kind is SpanKind.PRODUCER and child[KIND] is SpanKind.CONSUMER
    client_ns = parent_ns if parent_kind in _CLIENTS else NO_LATENCY
    return Call(
        parent_service,
        service,
        MESSAGING if messaging else DIRECT,
        child[ERROR],
        child[DURATION],
        client_ns,
        child[START],
    )


def virtual_call(client: Node) -> Call | None:
    peer = client[PEER]
    if peer is None:
        return None
    name, connection_type = peer
    duration = client[DURATION]
    return Call(client[SERVICE], name, connection_type, client[ERROR], duration, duration, client[START])


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
        return [SpanRef(n[TRACE], n[PARENT], n[SERVICE], n[START]) for n in self.orphans]

    def client_refs(self) -> list[SpanRef]:
        return [SpanRef(n[TRACE], n[SPAN], n[SERVICE], n[START]) for n in self.clients]


@dataclass(slots=True)
class Added:
    calls: list[Call] = field(default_factory=list)
    fresh: list[Span] = field(default_factory=list)  # spans not seen before (duplicates left out)


class Pairer:
    """In-memory pairing within one process; not thread-safe (the stage holds a lock).

    Spans are remembered batch by batch: one ``add`` call's spans share their expiry time, so the
    window is a queue of batches rather than of spans."""

    def __init__(self, wait_s: float, max_pending: int, clock: Callable[[], float] = time.monotonic):
        self.wait_s = wait_s
        self.max_pending = max_pending
        self.clock = clock
        self._nodes: dict[tuple[str, str], Node] = {}  # possible parents, by (trace id, span id)
        self._orphans: dict[tuple[str, str], list[Node]] = {}  # children waiting, by (trace id, parent id)
        # Clients with a peer whose call was paired with a child (no virtual peer call for them).
        self._served: set[tuple[str, str]] = set()
        self._order: deque[tuple[float, list[Node]]] = deque()
        self._pending = 0
        self.expired_unpaired = 0  # children whose parent was found neither here nor in storage
        self.evicted_early = 0  # spans let go before their window because max_pending was reached

    def __len__(self) -> int:
        return self._pending

    def add(self, spans: Iterable[Span]) -> Added:
        added = Added()
        nodes, orphans, calls, fresh = self._nodes, self._orphans, added.calls, added.fresh
        kept: list[Node] = []
        server, clients, error = SpanKind.SERVER, _CLIENTS, StatusCode.ERROR
        for span in spans:
            trace_id, span_id, kind = span.trace_id, span.span_id, span.kind
            key = (trace_id, span_id)
            known = nodes.get(key)
            if known is not None and known[KIND] is kind:
                continue  # the same span again: count it once
            start = span.start_ns
            node: Node = (
                trace_id,
                span_id,
                span.parent_span_id,
                span.resource.service_name,
                kind,
                span.status_code is error,
                start,
                span.end_ns - start,
                _peer(span) if kind in clients else None,
            )
            fresh.append(span)
            kept.append(node)
            if known is None or kind is server:
                nodes[key] = node  # Zipkin's shared spans: the server half is the parent of what follows
            if known is not None and (known[PEER] is not None or node[PEER] is not None):
                self._served.add(key)  # the two halves of a Zipkin shared span
            parent_id = node[PARENT]
            if parent_id:
                parent = nodes.get((trace_id, parent_id))
                if parent is None:
                    waiting = orphans.get((trace_id, parent_id))
                    if waiting is None:
                        orphans[(trace_id, parent_id)] = [node]
                    else:
                        waiting.append(node)
                else:
                    self._pair_local(parent, node, calls)
            elif kind is server:
                calls.append(Call(USER, node[SERVICE], DIRECT, node[ERROR], node[DURATION], NO_LATENCY, start))
            children = orphans.pop(key, None)
            if children is not None:
                for child in children:
                    self._pair_local(node, child, calls)
        if kept:
            self._order.append((self.clock() + self.wait_s, kept))
            self._pending += len(kept)
        return added

    def _pair_local(self, parent: Node, child: Node, calls: list[Call]) -> None:
        call = pair(parent[SERVICE], parent[KIND], parent[DURATION], child)
        if call is not None:
            if parent[PEER] is not None:
                self._served.add((parent[TRACE], parent[SPAN]))
            calls.append(call)

    def expire(self, everything: bool = False) -> Expired:
        """Let go of spans whose window ended (all of them with ``everything``, at shutdown), and of
        the oldest ones beyond ``max_pending``."""
        expired = Expired()
        now = self.clock()
        order = self._order
        while order and (everything or order[0][0] <= now):
            self._let_go_all(order.popleft()[1], expired)
        while order and self._pending > self.max_pending:
            expires, kept = order.popleft()
            excess = self._pending - self.max_pending
            if excess < len(kept):
                order.appendleft((expires, kept[excess:]))
                kept = kept[:excess]
            self.evicted_early += len(kept)
            self._let_go_all(kept, expired)
        return expired

    def _let_go_all(self, kept: list[Node], expired: Expired) -> None:
        self._pending -= len(kept)
        nodes, orphans, served = self._nodes, self._orphans, self._served
        for node in kept:
            key = (node[TRACE], node[SPAN])
            if nodes.get(key) is node:
                del nodes[key]
            if node[PARENT]:
                waiting_key = (node[TRACE], node[PARENT])
                waiting = orphans.get(waiting_key)
                if waiting is not None and _remove_identical(waiting, node):
                    if not waiting:
                        del orphans[waiting_key]
                    expired.orphans.append(node)
            peer = node[PEER]
            if peer is not None:
                if key in served:
                    served.discard(key)
                else:
                    (expired.databases if peer[1] == DATABASE else expired.clients).append(node)

    def resolve(
        self, expired: Expired, parents: dict[tuple[str, str], ParentInfo], served: set[tuple[str, str]]
    ) -> list[Call]:
        """The calls of expired spans once storage answered: ``parents`` found by (trace id, span id),
        and the (trace id, span id) of expired clients that have a child in another service there."""
        calls: list[Call] = []
        for child in expired.orphans:
            parent = parents.get((child[TRACE], child[PARENT]))
            if parent is None:
                self.expired_unpaired += 1
                continue
            call = pair(parent.service, parent.kind, parent.duration_ns, child)
            if call is not None:
                calls.append(call)
        for client in expired.clients:
            if (client[TRACE], client[SPAN]) not in served:
                call = virtual_call(client)
                if call is not None:
                    calls.append(call)
        calls.extend(call for db in expired.databases if (call := virtual_call(db)) is not None)
        return calls


def _remove_identical(nodes: list[Node], node: Node) -> bool:
    """Remove ``node`` itself (not an equal tuple: a replayed span is another node) from ``nodes``."""
    for index, candidate in enumerate(nodes):
        if candidate is node:
            del nodes[index]
            return True
    return False
