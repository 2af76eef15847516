"""Which tenant a span message on the Kafka topic belongs to, and the key it is sent under.

A tenant's message carries its tenant in the record header ``tenant`` and is keyed
``<tenant>/<trace id>``: partitioning by key still keeps a trace's messages in one partition, and two
tenants' traces with the same id are two keys. The default tenant's messages have no ``tenant`` header
and are keyed by the trace id alone, as before tenants, so topics written before keep their meaning.

The header, not the key, is what the ingester trusts: a key is only for partitioning. A header that is
present but names no valid tenant (empty, not UTF-8, repeated, not ``tenancy.NAME``) makes the record a
bad record, dead-lettered like an undecodable one, so that nothing is ever stored in a tenant it was
not sent for (and never in the default tenant by falling back).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from tracesearch import tenancy

HEADER: Final = "tenant"
Headers = list[tuple[str, bytes]]


class InvalidTenantHeader(ValueError):
    """The record's ``tenant`` header names no valid tenant."""


def record_key(tenant: str | None, trace_id: str) -> bytes:
    return (trace_id if tenant is None else f"{tenant}/{trace_id}").encode()


def record_headers(tenant: str | None) -> Headers:
    return [] if tenant is None else [(HEADER, tenant.encode())]


def tenant_of(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    """The tenant a record's headers name (None: no header, the default tenant)."""
    values = [value for name, value in headers or () if name == HEADER]
    if not values:
        return None
    if len(values) > 1:
        raise InvalidTenantHeader(f"{len(values)} {HEADER!r} headers, expected one")
    try:
        name = (values[0] or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidTenantHeader(f"the {HEADER!r} header is not UTF-8") from None
    if not tenancy.valid_tenant(name):
        raise InvalidTenantHeader(f"the {HEADER!r} header {name[:80]!r} is not a tenant name ({tenancy.NAME_RULE})")
    return name
