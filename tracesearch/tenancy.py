"""Tenants: names, and where a tenant's data lives.

A tenant is a name a key is bound to, or that a request sends in ``X-Scope-OrgID`` (Grafana's Tempo data
source and Tempo's own clients send it; tracesearch reads it when ``TRACESEARCH_TENANT_HEADER`` allows).
No tenant is the default tenant: the indices of ``TRACESEARCH_INDEX_PREFIX`` itself, as before tenants.

Each tenant's indices (spans, aggregates, sampling, alerts) start with ``<prefix>.<tenant>.``: the final
dot is not a character a tenant name may hold, so no tenant's wildcard (``tracesearch.a.-span-*``) can
match another's (``tracesearch.a-span-b.-span-…`` would, were the dot not there), and the default
tenant's (``tracesearch-span-*``, ``tracesearch-*``) matches none of them.
"""

from __future__ import annotations

import re
from typing import Final

HEADER: Final = "X-Scope-OrgID"
# Tenants become part of index names: lowercase, no character Elasticsearch refuses, no leading -/_, no dot.
NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
NAME_RULE: Final = "[a-z0-9][a-z0-9_-]{0,62}"


class TooManyTenants(RuntimeError):
    """A tenant one more than ``TRACESEARCH_MAX_TENANTS`` would have this process serve."""


def valid_tenant(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def index_prefix(base: str, tenant: str | None) -> str:
    """The index prefix of ``tenant``'s data (``base`` itself for the default tenant)."""
    if tenant is None:
        return base
    if not valid_tenant(tenant):
        raise ValueError(f"invalid tenant name {tenant!r}: use {NAME_RULE}")
    return f"{base}.{tenant}."


def tenant_of_index(base: str, index: str) -> str | None:
    """The tenant whose prefix ``index`` starts with (None: the default tenant's, or not ours)."""
    head = f"{base}."
    if not index.startswith(head):
        return None
    name, dot, _ = index[len(head) :].partition(".")
    return name if dot and valid_tenant(name) else None
