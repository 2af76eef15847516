"""Zipkin v2 protobuf (``zipkin.proto`` ``ListOfSpans``), decoded onto the same mapping as the JSON form.

No generated code is vendored: the three messages are described here as a ``FileDescriptorProto`` (field
numbers from openzipkin/zipkin-api ``zipkin.proto``) and their classes are built at import time in a
private descriptor pool, so they can never clash with another copy of the same proto.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError

from tracesearch.admission import Limits
from tracesearch.codecs import zipkin_json
from tracesearch.codecs.errors import DecodeError
from tracesearch.model import DecodedBatch, Span

_PACKAGE = "zipkin.proto3"
_FIELD = descriptor_pb2.FieldDescriptorProto
# The proto enum numbers differ from OTLP's: CLIENT=1 SERVER=2 PRODUCER=3 CONSUMER=4.
_KIND_NAMES = ("", "CLIENT", "SERVER", "PRODUCER", "CONSUMER")


def _field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False) -> Any:
    field = _FIELD(
        name=name,
        number=number,
        type=kind,
        label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL,
    )
    if type_name:  # descriptor.proto is proto2: an explicitly empty type_name still counts as set
        field.type_name = type_name
    return field


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="tracesearch/zipkin.proto", package=_PACKAGE, syntax="proto3")
    endpoint = file.message_type.add(name="Endpoint")
    endpoint.field.extend(
        [
            _field("service_name", 1, _FIELD.TYPE_STRING),
            _field("ipv4", 2, _FIELD.TYPE_BYTES),
            _field("ipv6", 3, _FIELD.TYPE_BYTES),
            _field("port", 4, _FIELD.TYPE_INT32),
        ]
    )
    annotation = file.message_type.add(name="Annotation")
    annotation.field.extend([_field("timestamp", 1, _FIELD.TYPE_FIXED64), _field("value", 2, _FIELD.TYPE_STRING)])
    span = file.message_type.add(name="Span")
    kind = span.enum_type.add(name="Kind")
    for number, name in enumerate(("SPAN_KIND_UNSPECIFIED", *_KIND_NAMES[1:])):
        kind.value.add(name=name, number=number)
    # map<string, string> tags is sugar for a repeated nested entry message flagged map_entry.
    tags_entry = span.nested_type.add(name="TagsEntry")
    tags_entry.field.extend([_field("key", 1, _FIELD.TYPE_STRING), _field("value", 2, _FIELD.TYPE_STRING)])
    tags_entry.options.map_entry = True
    span.field.extend(
        [
            _field("trace_id", 1, _FIELD.TYPE_BYTES),
            _field("parent_id", 2, _FIELD.TYPE_BYTES),
            _field("id", 3, _FIELD.TYPE_BYTES),
            _field("kind", 4, _FIELD.TYPE_ENUM, f".{_PACKAGE}.Span.Kind"),
            _field("name", 5, _FIELD.TYPE_STRING),
            _field("timestamp", 6, _FIELD.TYPE_FIXED64),
            _field("duration", 7, _FIELD.TYPE_UINT64),
            _field("local_endpoint", 8, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Endpoint"),
            _field("remote_endpoint", 9, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Endpoint"),
            _field("annotations", 10, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Annotation", repeated=True),
            _field("tags", 11, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Span.TagsEntry", repeated=True),
            _field("debug", 12, _FIELD.TYPE_BOOL),
            _field("shared", 13, _FIELD.TYPE_BOOL),
        ]
    )
    list_of_spans = file.message_type.add(name="ListOfSpans")
    list_of_spans.field.append(_field("spans", 1, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Span", repeated=True))
    return file


def _message_classes() -> tuple[Any, Any, Any, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("ListOfSpans", "Span", "Endpoint", "Annotation")
    )


ListOfSpans, ZipkinSpan, Endpoint, Annotation = _message_classes()


def decode_spans(body: bytes, limits: Limits) -> DecodedBatch:
    """Decode a ``POST /api/v2/spans`` body sent as ``application/x-protobuf``.

    An empty body is no spans; an undecodable one raises ``DecodeError``; a bad span is rejected alone.
    """
    message = ListOfSpans()
    try:
        message.ParseFromString(body)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"cannot decode zipkin.proto3.ListOfSpans: {exc}") from exc
    return zipkin_json.spans_from_zipkin([_as_json_shape(span) for span in message.spans], limits)


def _as_json_shape(span: Any) -> dict[str, Any]:
    """A proto span re-spelt as the JSON v2 object, so both forms share one mapping onto the model."""
    out: dict[str, Any] = {"traceId": span.trace_id.hex(), "id": span.id.hex()}
    if span.parent_id:
        out["parentId"] = span.parent_id.hex()
    if span.name:
        out["name"] = span.name
    if 0 < span.kind < len(_KIND_NAMES):
        out["kind"] = _KIND_NAMES[span.kind]
    elif span.kind:
        out["kind"] = str(span.kind)  # unknown number: let the shared mapping reject it with the value
    if span.timestamp:
        out["timestamp"] = span.timestamp
    if span.duration:
        out["duration"] = span.duration
    if span.HasField("local_endpoint"):
        out["localEndpoint"] = _endpoint(span.local_endpoint)
    if span.HasField("remote_endpoint"):
        out["remoteEndpoint"] = _endpoint(span.remote_endpoint)
    if span.annotations:
        out["annotations"] = [{"timestamp": a.timestamp, "value": a.value} for a in span.annotations]
    if span.tags:
        out["tags"] = dict(span.tags)
    if span.debug:
        out["debug"] = True
    if span.shared:
        out["shared"] = True
    return out


def _endpoint(endpoint: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if endpoint.service_name:
        out["serviceName"] = endpoint.service_name
    ipv4 = _ip_text(endpoint.ipv4, 4)
    if ipv4:
        out["ipv4"] = ipv4
    ipv6 = _ip_text(endpoint.ipv6, 16)
    if ipv6:
        out["ipv6"] = ipv6
    if endpoint.port:
        out["port"] = endpoint.port
    return out


def _ip_text(raw: bytes, size: int) -> str:
    # A wrong-length address is noise from a broken client; drop it rather than refuse the span.
    if len(raw) != size:
        return ""
    return str(ipaddress.IPv4Address(raw) if size == 4 else ipaddress.IPv6Address(raw))


def encode_spans(spans: Sequence[Span]) -> bytes:
    """Spans as a ``ListOfSpans`` body, with exactly the mapping of ``zipkin_json.encode_spans``.

    For tests and for replaying stored data to a real Zipkin.
    """
    message = ListOfSpans()
    for item in zipkin_json.encode_spans(spans):
        _fill_span(message.spans.add(), item)
    return message.SerializeToString()  # type: ignore[no-any-return]


def _fill_span(pb: Any, item: dict[str, Any]) -> None:
    pb.trace_id = bytes.fromhex(item["traceId"])
    pb.id = bytes.fromhex(item["id"])
    if item.get("parentId"):
        pb.parent_id = bytes.fromhex(item["parentId"])
    if item.get("kind") in _KIND_NAMES[1:]:
        pb.kind = _KIND_NAMES.index(item["kind"])
    pb.name = item.get("name", "")
    pb.timestamp = item.get("timestamp", 0)
    pb.duration = item.get("duration", 0)
    for field, key in (("local_endpoint", "localEndpoint"), ("remote_endpoint", "remoteEndpoint")):
        if key in item:
            _fill_endpoint(getattr(pb, field), item[key])
    for annotation in item.get("annotations", ()):
        pb.annotations.add(timestamp=annotation["timestamp"], value=annotation["value"])
    for key, value in item.get("tags", {}).items():
        pb.tags[key] = value
    pb.debug = bool(item.get("debug"))
    pb.shared = bool(item.get("shared"))


def _fill_endpoint(pb: Any, endpoint: dict[str, Any]) -> None:
    pb.SetInParent()
    pb.service_name = endpoint.get("serviceName", "")
    if endpoint.get("ipv4"):
        pb.ipv4 = ipaddress.IPv4Address(endpoint["ipv4"]).packed
    if endpoint.get("ipv6"):
        pb.ipv6 = ipaddress.IPv6Address(endpoint["ipv6"]).packed
    pb.port = endpoint.get("port", 0)
