"""The values passed between pairing, aggregation and storage."""

from __future__ import annotations

from typing import NamedTuple

from tracesearch.model import SpanKind

USER = "user"
# connection_type label values, as Tempo's service graphs name them.
DIRECT = ""
VIRTUAL_NODE = "virtual_node"
DATABASE = "database"
MESSAGING = "messaging_system"
NO_LATENCY = -1


class Call(NamedTuple):
    """One call on a service-graph edge (client → server)."""

    client: str
    server: str
    connection_type: str
    error: bool
    server_ns: int  # latency seen by the server side (the client span's for virtual peers)
    client_ns: int  # latency seen by the client span, NO_LATENCY when there is no client span
    start_ns: int  # when it happened: the server span's start (the client's for virtual peers)


class ParentInfo(NamedTuple):
    """What pairing needs of a parent span found in storage."""

    service: str
    kind: SpanKind
    duration_ns: int


class SpanRef(NamedTuple):
    """A span whose partner must be looked up in storage: (trace id, id to look up, its service, start)."""

    trace_id: str
    span_id: str
    service: str
    start_ns: int


KIND_LABELS = {kind: f"SPAN_KIND_{kind.name}" for kind in SpanKind}
STATUS_LABELS = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")

# Labels of the per-minute aggregates: span metrics (RED) and service-graph edges.
SPAN_LABELS = ("service", "span_name", "span_kind", "status_code")
EDGE_LABELS = ("client", "server", "connection_type")
_KIND_ALIASES = {kind.name.lower(): label for kind, label in KIND_LABELS.items()}
_STATUS_ALIASES = {label.removeprefix("STATUS_CODE_").lower(): label for label in STATUS_LABELS}


def normalise_label(label: str, value: str) -> str:
    """Tempo's label values (``SPAN_KIND_SERVER``), or the short forms (``server``, ``error``)."""
    if label == "span_kind":
        return _KIND_ALIASES.get(value.lower(), value)
    if label == "status_code":
        return _STATUS_ALIASES.get(value.lower(), value)
    return value


def short_label(label: str, value: str) -> str:
    """``SPAN_KIND_SERVER`` → ``server``, ``STATUS_CODE_ERROR`` → ``error``: TraceQL's spelling."""
    if label == "span_kind":
        return value.removeprefix("SPAN_KIND_").lower()
    if label == "status_code":
        return value.removeprefix("STATUS_CODE_").lower()
    return value


def check_labels(allowed: tuple[str, ...], names: list[str]) -> None:
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ValueError(f"unknown label(s) {', '.join(unknown)}; use {', '.join(allowed)}")
