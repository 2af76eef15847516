"""The remote service a span names: what Zipkin shows as its ``remoteEndpoint.serviceName``.

One definition for the Zipkin encoder (what a trace shows), the span's search terms (what
``remoteServiceName=`` finds) and ``/api/v2/remoteServices`` (what it lists), so every name listed finds
its spans, as in Zipkin, which lists and searches the remote endpoint names it was sent.
"""

from __future__ import annotations

from tracesearch.model import Span, SpanKind

# The span field (``query.conditions``) and search term (``query.span_terms``) holding the name.
REMOTE_SERVICE_FIELD = "zipkin:remoteServiceName"
# The OTel spec's ranking (sdk_exporters/zipkin.md) for a CLIENT or PRODUCER span without peer.service.
REMOTE_NAME_KEYS = (
    "server.address",
    "net.peer.name",
    "server.socket.domain",
    "net.sock.peer.name",
    "peer.hostname",
    "peer.address",
    "db.name",
)
_CALLING_KINDS = (SpanKind.CLIENT, SpanKind.PRODUCER)


def remote_service_name(span: Span) -> str:
    """The name, or "" for a span that names none.

    A span sent through Zipkin names what its remoteEndpoint said (a ``peer.service`` tag without one
    names nothing, as in Zipkin); any other span its ``peer.service``, else for a client or producer
    span the first of ``REMOTE_NAME_KEYS`` it has, as the OTel spec's Zipkin exporter maps it."""
    if span.zipkin is not None:
        sent = span.zipkin.remote_endpoint.get("serviceName")
        return sent if isinstance(sent, str) else ""
    service = span.attributes.get("peer.service")
    if isinstance(service, str) and service:
        return service
    if span.kind in _CALLING_KINDS:
        for key in REMOTE_NAME_KEYS:
            candidate = span.attributes.get(key)
            if isinstance(candidate, str) and candidate:
                return candidate
    return ""
