"""The canonical span model: every codec decodes into it and every store writes from it.

Identifiers are lower-case hex (trace id 32 chars, span id 16 chars, parent "" for a root span).
Times are integer nanoseconds since the Unix epoch. Attribute values keep their OTLP type:
``str``, ``bool``, ``int``, ``float``, ``bytes``, ``list`` (OTLP array) or ``dict`` (OTLP kvlist).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

AttrValue = str | bool | int | float | bytes | list["AttrValue"] | dict[str, "AttrValue"] | None
Attributes = dict[str, AttrValue]

UNKNOWN_SERVICE = "unknown_service"
TRACE_ID_HEX_LEN = 32
SPAN_ID_HEX_LEN = 16


class SpanKind(IntEnum):
    """OTLP span kinds, same numbers as the OTLP protobuf enum."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5

    @property
    def label(self) -> str:
        """Lower-case name as Jaeger, Tempo and Grafana print it (``server``, ``client`` ...)."""
        return self.name.lower()


class StatusCode(IntEnum):
    """OTLP status codes, same numbers as the OTLP protobuf enum."""

    UNSET = 0
    OK = 1
    ERROR = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class Event:
    time_ns: int
    name: str
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class Link:
    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0


@dataclass(slots=True)
class Resource:
    """Resource and instrumentation scope shared by many spans of one batch (never copied per span)."""

    attributes: Attributes = field(default_factory=dict)
    service_name: str = UNKNOWN_SERVICE
    # Encoders may memoise their per-resource work here: a resource is not changed once decoded,
    # and one resource is shared by every span of its batch.
    encoded: Any = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Scope:
    name: str = ""
    version: str = ""
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ZipkinOrigin:
    """What a span sent through the Zipkin API was, where the model keeps it another way.

    Zipkin stores what it is sent and answers with it. The Zipkin decoder maps a span onto the model
    (scope, status, trace state and dropped counts from their tags, ``peer.service`` and the network
    peer from ``remoteEndpoint``, event attributes from annotation text): that is what Jaeger, Tempo and
    TraceQL see. This keeps what the mapping would lose, so the Zipkin encoder gives the span back as
    sent: ``tags`` the model holds as fields (by their sent names and values), ``derived`` the attribute
    keys made from ``remoteEndpoint`` rather than sent as tags, ``remote_endpoint`` as sent, and
    ``annotations`` the values as sent, one per event (empty when each is the event's own spelling).
    """

    tags: dict[str, str] = field(default_factory=dict)
    derived: tuple[str, ...] = ()
    remote_endpoint: dict[str, str | int] = field(default_factory=dict)
    annotations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A compact JSON object (what a stored document and a Kafka message carry)."""
        out: dict[str, Any] = {}
        if self.tags:
            out["t"] = self.tags
        if self.derived:
            out["d"] = list(self.derived)
        if self.remote_endpoint:
            out["r"] = self.remote_endpoint
        if self.annotations:
            out["a"] = list(self.annotations)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ZipkinOrigin:
        return cls(
            tags=dict(doc.get("t", {})),
            derived=tuple(doc.get("d", ())),
            remote_endpoint=dict(doc.get("r", {})),
            annotations=tuple(doc.get("a", ())),
        )


@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    resource: Resource
    scope: Scope
    parent_span_id: str = ""
    kind: SpanKind = SpanKind.UNSPECIFIED
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    attributes: Attributes = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    trace_state: str = ""
    flags: int = 0
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0
    # Set for a span that came in through the Zipkin API: how to give it back as it was sent.
    zipkin: ZipkinOrigin | None = None

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(slots=True)
class Rejection:
    """One span refused by a decoder or validator, with where it was and why."""

    where: str
    reason: str


class PerTraceMessages(Protocol):
    def messages(self, max_bytes: int) -> Iterator[tuple[str, bytes, int]]:
        """(trace id, OTLP ``ExportTraceServiceRequest`` bytes, span count) for every accepted span."""
        ...


@dataclass(slots=True)
class DecodedBatch:
    """What a codec made of one request: the spans to store, the refused ones, and warnings."""

    spans: list[Span] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The accepted spans already encoded per trace, when the codec has them without re-encoding
    # (OTLP protobuf, nothing trimmed): what Kafka mode produces to the topic.
    per_trace: PerTraceMessages | None = None
    # Accepted spans that were vetted but not built into ``spans``: ``per_trace`` holds them (Kafka
    # mode's receiver, which forwards bytes only).
    unbuilt: int = 0

    @property
    def accepted(self) -> int:
        return len(self.spans) + self.unbuilt


def is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return text.isascii() and text.isalnum()


def pad_trace_id(trace_id: str) -> str:
    """Zipkin and Jaeger allow 64-bit trace ids; the canonical form is always 128-bit."""
    return trace_id.lower().rjust(TRACE_ID_HEX_LEN, "0")


def short_trace_id(trace_id: str) -> str:
    """The 16-char form Jaeger and Zipkin print when the high 64 bits are zero."""
    if trace_id.startswith("0" * 16):
        return trace_id[16:]
    return trace_id
