"""Zipkin v2 JSON spans, both ways, and the Zipkin → model mapping shared with ``zipkin_proto``.

Decoding follows the OpenTelemetry Collector's zipkin receiver, with newer attribute names:
``localEndpoint`` becomes the resource (``service.name``, ``net.host.ip``, ``net.host.port``), and
``remoteEndpoint`` becomes ``peer.service``, ``network.peer.address`` and ``network.peer.port``: that is
what the other APIs show. What this mapping loses (tags kept as span fields, the endpoints and annotation
text as sent) is kept beside it (``model.ZipkinOrigin``), and such a span is encoded back as it was sent,
as Zipkin itself answers. Any other span is encoded as the OTel spec's ``sdk_exporters/zipkin.md`` says.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import orjson

from tracesearch.admission import Limits, admit, is_lower_hex
from tracesearch.codecs.common import INT64_MAX, INT64_MIN, attribute_json, attribute_text, json_error_text
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import (
    SPAN_ID_HEX_LEN,
    TRACE_ID_HEX_LEN,
    UNKNOWN_SERVICE,
    Attributes,
    AttrValue,
    DecodedBatch,
    Event,
    Rejection,
    Resource,
    Scope,
    Span,
    SpanKind,
    StatusCode,
    ZipkinOrigin,
    pad_trace_id,
    short_trace_id,
)
from tracesearch.query.remote_service import remote_service_name

_KIND_FROM_ZIPKIN = {
    "CLIENT": SpanKind.CLIENT,
    "SERVER": SpanKind.SERVER,
    "PRODUCER": SpanKind.PRODUCER,
    "CONSUMER": SpanKind.CONSUMER,
}
_KIND_TO_ZIPKIN = {kind: name for name, kind in _KIND_FROM_ZIPKIN.items()}
_STATUS_FROM_TAG = {
    "OK": StatusCode.OK,
    "ERROR": StatusCode.ERROR,
    "UNSET": StatusCode.UNSET,
    "STATUS_CODE_OK": StatusCode.OK,
    "STATUS_CODE_ERROR": StatusCode.ERROR,
    "STATUS_CODE_UNSET": StatusCode.UNSET,
}
_DROPPED_TAGS = ("otel.dropped_attributes_count", "otel.dropped_events_count", "otel.dropped_links_count")
# Resource attributes that become localEndpoint fields rather than tags.
LOCAL_ENDPOINT_KEYS = frozenset({"service.name", "net.host.ip", "net.host.ipv6", "net.host.port"})
# "name {json}", "name: {json}" (Go), "\"name\":{json}" (Java): a name, a separator, then one object.
_NAMED_JSON = re.compile(r"(?s)(?P<name>.*?)(?::\s*|\s+)(?P<json>\{.*\})")
_MAX_JSON_DEPTH = 64

ResourceKey = tuple[str, str, str, int]


class ZipkinSpanError(ValueError):
    """One Zipkin span is unusable; becomes a ``Rejection`` for that span only."""


# ---------------------------------------------------------------------------------------------- decode


def decode_spans(body: bytes, limits: Limits) -> DecodedBatch:
    """Decode a ``POST /api/v2/spans`` JSON body (a list of Zipkin v2 spans).

    An empty body and ``[]`` are no spans. A body that is not a JSON list, or is Zipkin v1, raises
    ``DecodeError``; a bad span is rejected on its own.
    """
    if not body.strip():
        return DecodedBatch()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(json_error_text(exc)) from exc
    if _looks_like_v1(doc):
        raise DecodeError("looks like Zipkin v1 (it has binaryAnnotations), post it to /api/v1/spans")
    if not isinstance(doc, list):
        raise DecodeError(f"expected a JSON list of Zipkin v2 spans, got {type(doc).__name__}")
    return spans_from_zipkin(doc, limits)


def _looks_like_v1(doc: Any) -> bool:
    items = doc if isinstance(doc, list) else [doc]
    return any(isinstance(item, dict) and "binaryAnnotations" in item for item in items)


def spans_from_zipkin(items: Sequence[Any], limits: Limits) -> DecodedBatch:
    """Map Zipkin v2 spans in their JSON shape (dicts) onto the model; ``where`` is ``[index]``."""
    batch = DecodedBatch()
    resources: dict[ResourceKey, Resource] = {}
    scopes: dict[tuple[int, str, str], Scope] = {}
    for index, item in enumerate(items):
        where = f"[{index}]"
        try:
            span = _span_from_zipkin(item, resources, scopes)
        except ZipkinSpanError as exc:
            batch.rejected.append(Rejection(where, str(exc)))
            continue
        admit(batch, span, where, limits)
    return batch


def _span_from_zipkin(
    item: Any, resources: dict[ResourceKey, Resource], scopes: dict[tuple[int, str, str], Scope]
) -> Span:
    if not isinstance(item, dict):
        raise ZipkinSpanError(f"a span must be a JSON object, got {type(item).__name__}")
    tags = _tags(item.get("tags"))
    sent_tags = dict(tags)
    resource = _resource(_endpoint(item.get("localEndpoint"), "localEndpoint"), resources)
    scope = _scope(tags, resource, scopes)
    status_code, status_message = _status(tags)
    trace_state = tags.pop("w3c.tracestate", "")
    dropped = [_pop_count(tags, key) for key in _DROPPED_TAGS]
    attributes: Attributes = dict(tags)
    remote = _endpoint(item.get("remoteEndpoint"), "remoteEndpoint")
    _add_remote_endpoint(remote, attributes)
    events, annotations = _events(item.get("annotations"))
    origin = ZipkinOrigin(
        tags={key: value for key, value in sent_tags.items() if key not in tags},
        derived=tuple(key for key in attributes if key not in tags),
        remote_endpoint=_endpoint_as_sent(remote),
        annotations=annotations,
    )
    # Zipkin-only flags; kept as attributes so encode_spans can give them back.
    if item.get("shared") is True:
        attributes["zipkin.shared"] = True
    if item.get("debug") is True:
        attributes["zipkin.debug"] = True
    start_us = _micros(item.get("timestamp"), "timestamp")
    duration_us = _micros(item.get("duration"), "duration")
    return Span(
        trace_id=pad_trace_id(_hex_id(item.get("traceId"), "traceId", TRACE_ID_HEX_LEN)),
        span_id=_hex_id(item.get("id"), "id", SPAN_ID_HEX_LEN).rjust(SPAN_ID_HEX_LEN, "0"),
        name=_name(item.get("name")),
        start_ns=start_us * 1000,
        end_ns=(start_us + duration_us) * 1000,
        resource=resource,
        scope=scope,
        parent_span_id=_parent_id(item.get("parentId")),
        kind=_kind(item.get("kind")),
        status_code=status_code,
        status_message=status_message,
        attributes=attributes,
        events=events,
        trace_state=trace_state,
        dropped_attributes_count=dropped[0],
        dropped_events_count=dropped[1],
        dropped_links_count=dropped[2],
        zipkin=origin,
    )


def _hex_id(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str) or not value:
        raise ZipkinSpanError(f"{field} is required and must be a hex string")
    if len(value) > max_len:
        raise ZipkinSpanError(f"{field} {value[:64]!r} is longer than {max_len} hex characters")
    if not is_lower_hex(value):
        # Zipkin itself refuses upper-case ids, so a client sending them is broken elsewhere too.
        raise ZipkinSpanError(f"{field} {value!r} must be lower-hex without a prefix")
    return value


def _parent_id(value: Any) -> str:
    if value is None or value == "":
        return ""
    return _hex_id(value, "parentId", SPAN_ID_HEX_LEN).rjust(SPAN_ID_HEX_LEN, "0")


def _name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ZipkinSpanError(f"name must be a string, got {type(value).__name__}")
    return value


def _kind(value: Any) -> SpanKind:
    if value is None or value == "":
        return SpanKind.INTERNAL  # Zipkin has no INTERNAL: an absent kind is a local span.
    kind = _KIND_FROM_ZIPKIN.get(value.upper()) if isinstance(value, str) else None
    if kind is None:
        raise ZipkinSpanError(f"kind {value!r} is not one of CLIENT, SERVER, PRODUCER, CONSUMER")
    return kind


def _micros(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ZipkinSpanError(f"{field} must be a non-negative number of microseconds, got {value!r}")
    return int(value)


def _tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ZipkinSpanError(f"tags must be a JSON object, got {type(value).__name__}")
    # Zipkin tag values are strings; tolerate clients that send numbers or booleans.
    return {key: item if isinstance(item, str) else attribute_text(item) for key, item in value.items()}


def _endpoint(value: Any, field: str) -> ResourceKey:
    """(serviceName, ipv4, ipv6, port) of an endpoint, empty parts for absent fields."""
    if value is None:
        return ("", "", "", 0)
    if not isinstance(value, dict):
        raise ZipkinSpanError(f"{field} must be a JSON object, got {type(value).__name__}")
    service, ipv4, ipv6, port = (value.get(key) for key in ("serviceName", "ipv4", "ipv6", "port"))
    if not isinstance(port, int) or isinstance(port, bool) or port < 0:
        port = 0
    return (_text(service), _text(ipv4), _text(ipv6), port)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _resource(local: ResourceKey, resources: dict[ResourceKey, Resource]) -> Resource:
    """The one Resource shared by every span of the request with the same local endpoint."""
    resource = resources.get(local)
    if resource is None:
        service, ipv4, ipv6, port = local
        attributes: Attributes = {"service.name": service or UNKNOWN_SERVICE}
        if ipv4 or ipv6:
            attributes["net.host.ip"] = ipv4 or ipv6
        if ipv4 and ipv6:
            attributes["net.host.ipv6"] = ipv6
        if port:
            attributes["net.host.port"] = port
        resource = resources[local] = Resource(attributes, service or UNKNOWN_SERVICE)
    return resource


def _scope(tags: dict[str, str], resource: Resource, scopes: dict[tuple[int, str, str], Scope]) -> Scope:
    name = tags.pop("otel.scope.name", None)
    legacy_name = tags.pop("otel.library.name", None)
    version = tags.pop("otel.scope.version", None)
    legacy_version = tags.pop("otel.library.version", None)
    key = (id(resource), name or legacy_name or "", version or legacy_version or "")
    scope = scopes.get(key)
    if scope is None:
        scope = scopes[key] = Scope(name=key[1], version=key[2])
    return scope


def _status(tags: dict[str, str]) -> tuple[StatusCode, str]:
    code = StatusCode.UNSET
    code_text = tags.get("otel.status_code")
    if code_text is not None and code_text.upper() in _STATUS_FROM_TAG:
        code = _STATUS_FROM_TAG[code_text.upper()]
        del tags["otel.status_code"]
    description = tags.pop("otel.status_description", None)
    error = tags.get("error")
    # Zipkin marks failure by the mere presence of "error"; its value is the message. "false" is the
    # one value that clearly means the opposite, so it stays a plain attribute.
    if error is not None and error != "false":
        del tags["error"]
        code = StatusCode.ERROR
        if description is None and error != "true":
            description = error
    return code, description or ""


def _pop_count(tags: dict[str, str], key: str) -> int:
    value = tags.get(key)
    if value is None or not value.isdigit():
        return 0
    del tags[key]
    return int(value)


def _endpoint_as_sent(endpoint: ResourceKey) -> dict[str, str | int]:
    """The endpoint's fields that Zipkin keeps: a name, valid addresses, a port."""
    service, ipv4, ipv6, port = endpoint
    out: dict[str, str | int] = {}
    if service:
        out["serviceName"] = service
    if _ip_version(ipv4) == 4:
        out["ipv4"] = ipv4
    if _ip_version(ipv6) == 6:
        out["ipv6"] = ipv6
    if port:
        out["port"] = port
    return out


def _add_remote_endpoint(remote: ResourceKey, attributes: Attributes) -> None:
    # The spec's rule: remoteEndpoint fills these unless the tags already said otherwise.
    service, ipv4, ipv6, port = remote
    if service:
        attributes.setdefault("peer.service", service)
    if ipv4 or ipv6:
        attributes.setdefault("network.peer.address", ipv4 or ipv6)
    if port:
        attributes.setdefault("network.peer.port", port)


def _events(value: Any) -> tuple[list[Event], tuple[str, ...]]:
    """The events of the annotations, and the annotation values as sent when one of them is not
    what encoding its event gives back (attributes parsed out of its text)."""
    if value is None:
        return [], ()
    if not isinstance(value, list):
        raise ZipkinSpanError(f"annotations must be a JSON array, got {type(value).__name__}")
    events = []
    for index, annotation in enumerate(value):
        if not isinstance(annotation, dict) or not isinstance(annotation.get("value"), str):
            raise ZipkinSpanError(f"annotations[{index}] must be an object with a string value")
        name, attributes, dropped = parse_annotation(annotation["value"])
        time_us = _micros(annotation.get("timestamp"), f"annotations[{index}].timestamp")
        events.append(Event(time_us * 1000, name, attributes, dropped))
    sent = tuple(annotation["value"] for annotation in value)
    if all(text == _annotation_value(event) for text, event in zip(sent, events, strict=True)):
        return events, ()
    return events, sent


def parse_annotation(value: str) -> tuple[str, Attributes, int]:
    """An annotation value as (event name, attributes, dropped count).

    OTel exporters fold event attributes into the annotation text, each in its own spelling:
    ``name {json}`` (this module, the OTel spec's example), ``"name": {json}`` (Java), ``{"name": {json}}``
    (Python) and ``name|{json}|dropped`` (the Collector). Anything else is a plain name.
    """
    if value.endswith("}"):
        parsed = _python_style(value) or _named_json(value)
        if parsed is not None:
            return parsed[0], parsed[1], 0
    parts = value.split("|")
    if len(parts) >= 3 and parts[-1].isdigit():
        attributes = _json_object("|".join(parts[1:-1]))
        if attributes is not None:
            return parts[0], attributes, int(parts[-1])
    return value, {}, 0


def _python_style(value: str) -> tuple[str, Attributes] | None:
    if not value.startswith("{"):
        return None
    doc = _loads(value)
    if isinstance(doc, dict) and len(doc) == 1:
        name, attributes = next(iter(doc.items()))
        if isinstance(attributes, dict):
            return name, _json_attributes(attributes)
    return None


def _named_json(value: str) -> tuple[str, Attributes] | None:
    match = _NAMED_JSON.fullmatch(value)
    if match is None:
        return None
    attributes = _json_object(match["json"])
    if attributes is None:
        return None
    name = match["name"]
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        unquoted = _loads(name)
        name = unquoted if isinstance(unquoted, str) else name
    return name, attributes


def _json_object(text: str) -> Attributes | None:
    doc = _loads(text)
    return _json_attributes(doc) if isinstance(doc, dict) else None


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _json_attributes(doc: dict[str, Any]) -> Attributes:
    return {str(key): _json_value(value, 1) for key, value in doc.items()}


def _json_value(value: Any, depth: int) -> AttrValue:
    if depth > _MAX_JSON_DEPTH:
        return attribute_json(value)
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        return float(value)
    if isinstance(value, list):
        return [_json_value(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item, depth + 1) for key, item in value.items()}
    return value  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- encode


def encode_spans(spans: Sequence[Span]) -> list[dict[str, Any]]:
    """Spans as Zipkin v2 JSON objects, in the given order."""
    return [span_to_zipkin(span) for span in spans]


def encode_trace(trace: Sequence[Span]) -> list[dict[str, Any]]:
    """A trace as Zipkin's read API answers it (``GET /api/v2/trace/{id}``): the server half of a span
    shared with its client (B3's one span id for both) is marked ``shared``."""
    clients = {s.span_id for s in trace if s.kind is SpanKind.CLIENT}
    encoded = encode_spans(trace)
    for span, out in zip(trace, encoded, strict=True):
        if span.kind is SpanKind.SERVER and span.span_id in clients:
            out["shared"] = True
    return encoded


def span_to_zipkin(span: Span) -> dict[str, Any]:
    attributes = dict(span.attributes)
    out: dict[str, Any] = {"traceId": short_trace_id(span.trace_id), "id": span.span_id}
    if span.parent_span_id:
        out["parentId"] = span.parent_span_id
    if span.name:
        out["name"] = span.name
    kind = _KIND_TO_ZIPKIN.get(span.kind)
    if kind:
        out["kind"] = kind
    out["timestamp"] = span.start_ns // 1000
    # Zipkin durations are whole microseconds and at least 1.
    out["duration"] = max(1, (span.end_ns - span.start_ns) // 1000)
    out["localEndpoint"] = _local_endpoint(span.resource)
    origin = span.zipkin
    # A span sent through Zipkin goes back as sent; any other as the OTel spec's Zipkin exporter maps it.
    remote = _remote_endpoint(span, attributes) if origin is None else dict(origin.remote_endpoint)
    if remote:
        out["remoteEndpoint"] = remote
    if span.events:
        out["annotations"] = _annotations(span)
    if _pop_flag(attributes, "zipkin.debug"):
        out["debug"] = True
    if _pop_flag(attributes, "zipkin.shared"):
        out["shared"] = True
    tags = _zipkin_tags(span, attributes) if origin is None else _tags_as_sent(origin, attributes)
    if tags:
        out["tags"] = tags
    return out


def _annotations(span: Span) -> list[dict[str, Any]]:
    sent = span.zipkin.annotations if span.zipkin is not None else ()
    return [
        {"timestamp": event.time_ns // 1000, "value": sent[index] if index < len(sent) else _annotation_value(event)}
        for index, event in enumerate(span.events)
    ]


def _tags_as_sent(origin: ZipkinOrigin, attributes: Attributes) -> dict[str, str]:
    """The tags of a span sent through Zipkin: its attributes but those made from remoteEndpoint, and the
    tags the model keeps as fields, by the names and values they were sent with."""
    tags = {key: attribute_text(value) for key, value in attributes.items() if key not in origin.derived}
    tags.update(origin.tags)
    return tags


def _pop_flag(attributes: Attributes, key: str) -> bool:
    return attributes.pop(key, None) in (True, "true")


def _local_endpoint(resource: Resource) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"serviceName": resource.service_name}
    attributes = resource.attributes
    # Only addresses: Grafana decodes ipv4/ipv6 as Go's net.IP and one unparsable address fails the whole
    # trace, while resource attributes are free text.
    ip = attributes.get("net.host.ip")
    if isinstance(ip, str) and _ip_version(ip) == (6 if ":" in ip else 4):
        endpoint["ipv6" if ":" in ip else "ipv4"] = ip
    ipv6 = attributes.get("net.host.ipv6")
    if isinstance(ipv6, str) and _ip_version(ipv6) == 6:
        endpoint["ipv6"] = ipv6
    port = _port(attributes.get("net.host.port"))
    if port:
        endpoint["port"] = port
    return endpoint


def _remote_endpoint(span: Span, attributes: Attributes) -> dict[str, Any] | None:
    """Build remoteEndpoint, taking out of ``attributes`` what it now carries (so no duplicate tags)."""
    endpoint: dict[str, Any] = {}
    # Zipkin draws a dependency link only when a client span names its remote service.
    service = remote_service_name(span)
    if service:
        endpoint["serviceName"] = service
        if attributes.get("peer.service") == service:
            del attributes["peer.service"]
    address = attributes.get("network.peer.address")
    if isinstance(address, str) and _is_ip(address):
        endpoint["ipv6" if ":" in address else "ipv4"] = address
        del attributes["network.peer.address"]
        port = _port(attributes.get("network.peer.port"))
        if port:
            endpoint["port"] = port
            del attributes["network.peer.port"]
    return endpoint or None


def _is_ip(text: str) -> bool:
    return _ip_version(text) is not None


def _ip_version(text: str) -> int | None:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def _port(value: AttrValue) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    return 0


def _annotation_value(event: Event) -> str:
    if not event.attributes:
        return event.name
    return f"{event.name} {attribute_json(event.attributes)}"


def _zipkin_tags(span: Span, attributes: Attributes) -> dict[str, str]:
    tags: dict[str, str] = {}
    # Resource attributes first, so a span attribute of the same name wins (as in the OTel exporters).
    for key, value in span.resource.attributes.items():
        if key not in LOCAL_ENDPOINT_KEYS:
            tags[key] = attribute_text(value)
    if span.scope.name:
        tags["otel.scope.name"] = span.scope.name
    if span.scope.version:
        tags["otel.scope.version"] = span.scope.version
    for key, value in attributes.items():
        tags[key] = attribute_text(value)
    _status_tags(span, tags)
    if span.trace_state:
        tags["w3c.tracestate"] = span.trace_state
    for key, count in zip(
        _DROPPED_TAGS,
        (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count),
        strict=True,
    ):
        if count:
            tags[key] = str(count)
    return tags


def _status_tags(span: Span, tags: dict[str, str]) -> None:
    if span.status_code == StatusCode.ERROR:
        tags["otel.status_code"] = "ERROR"
        tags["error"] = span.status_message
        return
    # Zipkin counts any "error" tag as a failure, so one must not survive on a span that did not fail.
    tags.pop("error", None)
    if span.status_code == StatusCode.OK:
        tags["otel.status_code"] = "OK"
        if span.status_message:
            tags["otel.status_description"] = span.status_message
