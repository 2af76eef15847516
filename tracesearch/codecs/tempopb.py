"""Tempo's ``tempopb.TraceByIDResponse`` as a protobuf message class, declared from its field list.

Tempo publishes no Python package of its protos; the message is small, so its descriptor is built here
from ``tempo.proto``: ``trace`` = 1 (``tempopb.Trace``, wire-identical to OTLP ``TracesData``),
``status`` = 3 (``COMPLETE``/``PARTIAL``), ``message`` = 4. Field 2 (``metrics``) is never sent.
Every protobuf tracesearch writes is built from message classes and serialised by the C runtime (the
one exception: Kafka messages re-framed per trace from a request's own span bytes, for speed, in
``otlp_proto``).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.trace.v1 import trace_pb2

_FILE = "tracesearch/tempopb/tempo_trace_by_id.proto"
_PACKAGE = "tracesearch.tempopb"
PARTIAL = 1


def _declare() -> Any:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_FILE)
    except KeyError:
        proto = descriptor_pb2.FileDescriptorProto(
            name=_FILE, package=_PACKAGE, dependency=[trace_pb2.DESCRIPTOR.name], syntax="proto3"
        )
        status = proto.enum_type.add(name="PartialStatus")
        status.value.add(name="COMPLETE", number=0)
        status.value.add(name="PARTIAL", number=PARTIAL)
        message = proto.message_type.add(name="TraceByIDResponse")
        field = descriptor_pb2.FieldDescriptorProto
        optional = field.LABEL_OPTIONAL
        message.field.add(
            name="trace",
            number=1,
            type=field.TYPE_MESSAGE,
            type_name=".opentelemetry.proto.trace.v1.TracesData",
            label=optional,
        )
        message.field.add(
            name="status", number=3, type=field.TYPE_ENUM, type_name=f".{_PACKAGE}.PartialStatus", label=optional
        )
        message.field.add(name="message", number=4, type=field.TYPE_STRING, label=optional)
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.TraceByIDResponse"))


TraceByIDResponse = _declare()
