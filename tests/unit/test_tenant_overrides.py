"""Per-tenant overrides (TRACESEARCH_TENANTS_FILE): parsed with each setting's own parser, refused with the
tenant and the field named, and applied on top of the default tenant's settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tracesearch.components import Components
from tracesearch.settings import VARIABLES, Settings
from tracesearch.tenant_overrides import OVERRIDABLE, TenantsError, load, parse_document

BASE = Settings(
    install_templates=False,
    sampling_strategies_file="/etc/default/strategies.json",
    alerts_rules_file="/etc/default/rules.yaml",
)
DOCUMENT = """
tenants:
  team-a:
    TRACESEARCH_RETENTION: 7d
    TRACESEARCH_INGEST_SPANS_PER_SECOND: "5000"
    TRACESEARCH_INGEST_BURST_SPANS: 20000
    TRACESEARCH_QUERY_TIMEOUT: 2s
    TRACESEARCH_QUERY_MAX_SPANS_PER_TRACE: 1000
    TRACESEARCH_SAMPLING_STRATEGIES_FILE: /etc/tracesearch/team-a/strategies.json
    TRACESEARCH_SAMPLING_DEFAULT_PROBABILITY: 0.25
  team-b:
"""


def test_values_go_through_each_settings_own_parser() -> None:
    overrides = parse_document(DOCUMENT)
    assert overrides.tenants() == ("team-a", "team-b")
    assert overrides.by_tenant["team-a"] == {
        "retention_s": 7 * 86400.0,
        "ingest_spans_per_second": 5000.0,
        "ingest_burst_spans": 20000,
        "query_timeout_s": 2.0,
        "query_max_spans_per_trace": 1000,
        "sampling_strategies_file": "/etc/tracesearch/team-a/strategies.json",
        "sampling_default_probability": 0.25,
    }
    assert overrides.by_tenant["team-b"] == {}


def test_overrides_apply_on_top_of_the_defaults_and_a_tenant_has_only_its_own_files() -> None:
    overrides = parse_document(DOCUMENT)
    team_a = overrides.apply(BASE, "team-a")
    assert team_a.index_prefix == "tracesearch.team-a."
    assert team_a.retention_s == 7 * 86400 and team_a.query_timeout_s == 2.0
    assert team_a.sampling_strategies_file == "/etc/tracesearch/team-a/strategies.json"
    assert team_a.alerts_rules_file == ""  # not the default tenant's
    assert team_a.query_max_traces == BASE.query_max_traces  # not overridden: the default's
    team_b = overrides.apply(BASE, "team-b")
    assert (team_b.sampling_strategies_file, team_b.alerts_rules_file) == ("", "")
    # A tenant the file does not list gets the defaults the same way.
    assert overrides.apply(BASE, "team-c").retention_s == BASE.retention_s
    assert overrides.retentions(BASE) == {"team-a": 7 * 86400.0, "team-b": BASE.retention_s}


def test_components_build_a_tenant_from_its_overrides(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(DOCUMENT)
    root = Components(Settings(install_templates=False, tenants_file=str(path)))
    child = root.for_tenant("team-a")
    assert child.settings == root.tenant_settings("team-a")
    assert child.settings.ingest_spans_per_second == 5000 and child.ingest_limiter.config.burst == 20000
    assert child.query.limits.max_spans_per_trace == 1000 and child.query.limits.timeout_s == 2.0
    assert root.query.limits.max_spans_per_trace == 50000
    assert root.ingest_limiter.config.spans_per_second == 0
    assert [c.tenant for c in root.listed_tenants()] == ["team-a", "team-b"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            "tenants: {team-a: {TRACESEARCH_RETENTION: soon}}",
            "tenants.team-a.TRACESEARCH_RETENTION: TRACESEARCH_RETENTION='soon' is not a duration",
        ),
        (
            "tenants: {team-a: {TRACESEARCH_RETENTON: 7d}}",
            "tenants.team-a.TRACESEARCH_RETENTON: unknown setting TRACESEARCH_RETENTON; "
            "did you mean TRACESEARCH_RETENTION?",
        ),
        (
            "tenants: {team-a: {TRACESEARCH_ES_URL: 'http://elsewhere:9200'}}",
            "tenants.team-a.TRACESEARCH_ES_URL: TRACESEARCH_ES_URL cannot be overridden per tenant",
        ),
        (
            "tenants: {team-a: {TRACESEARCH_INDEX_PREFIX: other}}",
            "TRACESEARCH_INDEX_PREFIX cannot be overridden per tenant",
        ),
        ("tenants: {team-a: {TRACESEARCH_KAFKA_TOPIC: t}}", "TRACESEARCH_KAFKA_TOPIC cannot be overridden"),
        (
            "tenants: {team-a: {TRACESEARCH_QUERY_MAX_TRACES: [1, 2]}}",
            "tenants.team-a.TRACESEARCH_QUERY_MAX_TRACES: use a string or a number",
        ),
        (
            "tenants: {team-a: {TRACESEARCH_QUERY_MAX_TRACES: 0}}",
            "tenants.team-a.TRACESEARCH_QUERY_MAX_TRACES: TRACESEARCH_QUERY_MAX_TRACES=0 must be at least 1",
        ),
        ("tenants: {Team.A: {}}", "tenants.Team.A: not a tenant name"),
        ("tenants: [team-a]", "tenants: use a mapping"),
        ("keys: []", "the file holds one mapping, `tenants:`"),
        ("tenants: {team-a: {", "not valid YAML"),
    ],
)
def test_a_bad_document_is_refused_naming_the_tenant_and_the_field(document: str, message: str) -> None:
    with pytest.raises(TenantsError) as caught:
        parse_document(document)
    assert message in str(caught.value)


def test_cross_field_checks_run_per_tenant_and_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants: {team-a: {TRACESEARCH_RETENTION: 1h}}")
    with pytest.raises(TenantsError) as caught:
        load(Settings(tenants_file=str(path)))
    assert str(caught.value) == (
        f"TRACESEARCH_TENANTS_FILE={path}: tenants.team-a: TRACESEARCH_RETENTION must be 0 (keep everything) "
        "or at least 1d"
    )
    with pytest.raises(TenantsError, match="cannot read it"):
        load(Settings(tenants_file=str(tmp_path / "missing.yaml")))
    path.write_text("tenants: {a: {}, b: {}}")
    with pytest.raises(TenantsError, match="2 tenants, more than TRACESEARCH_MAX_TENANTS=1"):
        load(Settings(tenants_file=str(path), max_tenants=1))


def test_the_whitelist_names_real_settings_and_none_about_connections_prefix_or_kafka() -> None:
    assert {variable.name for variable in VARIABLES} >= OVERRIDABLE
    assert not {name for name in OVERRIDABLE if "KAFKA" in name or "_ES_" in name or "PREFIX" in name}


def test_a_tenants_rules_and_strategies_are_its_own_files_or_none(tmp_path: Path) -> None:
    rules = tmp_path / "team-b-rules.yaml"
    rules.write_text("rules: []\n")
    path = tmp_path / "tenants.yaml"
    path.write_text(f"tenants:\n  team-a: {{}}\n  team-b: {{TRACESEARCH_ALERTS_RULES_FILE: {rules}}}\n")
    root = Components(replace(BASE, tenants_file=str(path)))
    assert root.alert_rules.path == BASE.alerts_rules_file
    team_a, team_b = root.for_tenant("team-a"), root.for_tenant("team-b")
    assert (team_a.alert_rules.path, team_a.sampling.configured) == ("", False)
    assert team_b.alert_rules.path == str(rules) and team_b.alert_rules.rules() == ()
    assert team_a.sampling.strategy("shop").to_json()["probabilisticSampling"] == {"samplingRate": 1.0}
