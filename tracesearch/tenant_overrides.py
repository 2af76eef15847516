"""Per-tenant overrides of settings: ``TRACESEARCH_TENANTS_FILE``, like Tempo's per-tenant overrides.

The file (YAML, read with ``safe_load``) names, per tenant, settings in their own names and syntax, so
each value goes through its setting's own parser (``settings.VARIABLES``)::

    tenants:
      team-a:
        TRACESEARCH_RETENTION: 7d
        TRACESEARCH_INGEST_SPANS_PER_SECOND: "5000"
        TRACESEARCH_SAMPLING_STRATEGIES_FILE: /etc/tracesearch/team-a/strategies.json
      team-b: {}                 # listed: its alert and sampling runners start with the service

Only ``OVERRIDABLE`` settings may be named: limits, retention, a tenant's own files and its logs. What a
tenant must share with the others (connections, the index prefix, Kafka) is refused, like an unknown
name, with the closest overridable one. The file is read once, at start (a bad one stops the start,
naming tenant and field): a tenant's components are built once per process from its settings, so a
changed file takes a restart. The files it names (strategies, rules) are reloaded as the default's are.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import yaml

from tracesearch import tenancy
from tracesearch.settings import VARIABLES, VARIABLES_BY_FIELD, Settings, SettingsError

OVERRIDABLE: Final = frozenset(
    {
        "TRACESEARCH_RETENTION",
        "TRACESEARCH_INGEST_SPANS_PER_SECOND",
        "TRACESEARCH_INGEST_BURST_SPANS",
        "TRACESEARCH_MAX_SPANS_PER_REQUEST",
        "TRACESEARCH_MAX_REQUEST_BYTES",
        "TRACESEARCH_QUERY_TIMEOUT",
        "TRACESEARCH_MAX_CONCURRENT_QUERIES",
        "TRACESEARCH_QUERY_MAX_RANGE",
        "TRACESEARCH_QUERY_MAX_TRACES",
        "TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE",
        "TRACESEARCH_SAMPLING_STRATEGIES_FILE",
        "TRACESEARCH_SAMPLING_DEFAULT_PROBABILITY",
        "TRACESEARCH_ALERTS_RULES_FILE",
        "TRACESEARCH_LOGS_INDEX",
        "TRACESEARCH_LOGS_TRACE_ID_FIELD",
    }
)
# A tenant has these files only when its overrides name them: inheriting the default tenant's would serve
# a tenant the default's strategies and rules, and the admin API would write the default's file for it.
OWN_FILES: Final[Mapping[str, Any]] = {"sampling_strategies_file": "", "alerts_rules_file": ""}

FIELD_OF: Final[Mapping[str, str]] = {variable.name: name for name, variable in VARIABLES_BY_FIELD.items()}
_VARIABLE = {variable.name: variable for variable in VARIABLES}


class TenantsError(SettingsError):
    """The tenants file cannot be used; the message names the file, the tenant and the setting."""


@dataclass(frozen=True)
class TenantOverrides:
    """Each listed tenant's overridden ``Settings`` fields, parsed."""

    by_tenant: Mapping[str, Mapping[str, Any]]

    def tenants(self) -> tuple[str, ...]:
        """The tenants the file lists, sorted."""
        return tuple(sorted(self.by_tenant))

    def apply(self, base: Settings, tenant: str) -> Settings:
        """``tenant``'s settings: ``base`` with the tenant's index prefix, no files of the default's, and
        its overrides."""
        return replace(
            base,
            index_prefix=tenancy.index_prefix(base.index_prefix, tenant),
            **{**OWN_FILES, **self.by_tenant.get(tenant, {})},
        )

    def retentions(self, base: Settings) -> dict[str, float]:
        """The retention of each listed tenant (theirs, else ``base``'s); others have ``base``'s."""
        return {tenant: values.get("retention_s", base.retention_s) for tenant, values in self.by_tenant.items()}


NONE: Final = TenantOverrides({})


def _text(value: object, where: str) -> str:
    """A YAML scalar as the text of an environment variable (``5000`` and ``"5000"`` alike)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise TenantsError(f"{where}: use a string or a number, as in the environment, not {type(value).__name__}")


def _refusal(name: str, where: str) -> TenantsError:
    closest = difflib.get_close_matches(name, sorted(OVERRIDABLE), n=1, cutoff=0.0)
    hint = f"; did you mean {closest[0]}?" if closest else ""
    if name in _VARIABLE:
        return TenantsError(
            f"{where}: {name} cannot be overridden per tenant (connections, the index prefix and Kafka are the "
            f"service's){hint}"
        )
    return TenantsError(f"{where}: unknown setting {name}{hint}")


def parse_tenant(tenant: str, entries: object) -> dict[str, Any]:
    """One tenant's entries as ``Settings`` field values, each through its setting's own parser."""
    where = f"tenants.{tenant}"
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise TenantsError(f"{where}: use a mapping of TRACESEARCH_* settings to values")
    values: dict[str, Any] = {}
    for name, raw in entries.items():
        if not isinstance(name, str) or name not in OVERRIDABLE:
            raise _refusal(str(name), f"{where}.{name}")
        try:
            values[FIELD_OF[name]] = _VARIABLE[name].parse(name, _text(raw, f"{where}.{name}"))
        except SettingsError as exc:
            raise TenantsError(f"{where}.{name}: {exc}") from None
    return values


def parse_document(data: bytes | str) -> TenantOverrides:
    """The overrides of a tenants file's text; ``TenantsError`` naming the tenant and the field."""
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise TenantsError(f"not valid YAML: {exc}") from None
    if document is None:
        return NONE
    if not isinstance(document, dict) or set(document) - {"tenants"}:
        raise TenantsError("the file holds one mapping, `tenants:`, of tenant names to their settings")
    tenants = document.get("tenants") or {}
    if not isinstance(tenants, dict):
        raise TenantsError("tenants: use a mapping of tenant names to their settings")
    by_tenant: dict[str, Mapping[str, Any]] = {}
    for tenant, entries in tenants.items():
        if not isinstance(tenant, str) or not tenancy.valid_tenant(tenant):
            raise TenantsError(f"tenants.{tenant}: not a tenant name ({tenancy.NAME_RULE})")
        by_tenant[tenant] = parse_tenant(tenant, entries)
    return TenantOverrides(by_tenant)


def check(overrides: TenantOverrides, base: Settings) -> None:
    """Each tenant's settings pass the cross-field checks the default's do (a retention under a day...)."""
    if len(overrides.by_tenant) > base.max_tenants:
        raise TenantsError(f"{len(overrides.by_tenant)} tenants, more than TRACESEARCH_MAX_TENANTS={base.max_tenants}")
    for tenant in overrides.tenants():
        try:
            # With the default's prefix: a tenant's holds dots, which TRACESEARCH_INDEX_PREFIX may not.
            replace(overrides.apply(base, tenant), index_prefix=base.index_prefix).check()
        except SettingsError as exc:
            raise TenantsError(f"tenants.{tenant}: {exc}") from None


def load(base: Settings) -> TenantOverrides:
    """The overrides of ``base.tenants_file`` (none when unset), checked against ``base``."""
    path = base.tenants_file
    if not path:
        return NONE
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TenantsError(f"TRACESEARCH_TENANTS_FILE={path}: cannot read it ({exc.strerror or exc})") from None
    try:
        overrides = parse_document(data)
        check(overrides, base)
    except TenantsError as exc:
        raise TenantsError(f"TRACESEARCH_TENANTS_FILE={path}: {exc}") from None
    return overrides
