"""Retention: which daily indices expire, which span starts a receiver refuses, and the settings."""

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from tests.unit.codecs.factories import make_span
from tracesearch.admission import DEFAULT_LIMITS, admit
from tracesearch.model import DecodedBatch
from tracesearch.settings import Settings, SettingsError
from tracesearch.storage.es.retention import expired_indices, expired_of_every_tenant, oldest_kept_day, oldest_start_ns

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC).timestamp()
DAY = 86400.0
NS = 1_000_000_000


def test_the_oldest_kept_day_is_the_day_that_was_current_retention_ago() -> None:
    assert oldest_kept_day(NOW, 14 * DAY) == date(2026, 11, 8)
    # Just after midnight the day before is still partly within the retention: kept.
    assert oldest_kept_day(datetime(2026, 11, 22, 0, 0, 1, tzinfo=UTC).timestamp(), DAY) == date(2026, 11, 21)


def test_receivers_accept_spans_from_midnight_of_the_oldest_kept_day() -> None:
    assert oldest_start_ns(NOW, 14 * DAY) == int(datetime(2026, 11, 8, tzinfo=UTC).timestamp()) * NS
    assert oldest_start_ns(NOW, 0) == 0


def test_only_our_daily_indices_of_days_before_the_oldest_kept_one_expire() -> None:
    names = [
        "ts-span-2026-11-07",
        "ts-servicegraph-2026-11-01",
        "ts-spanmetrics-2025-01-31",
        "ts-span-2026-11-08",  # the oldest kept day
        "ts-spanmetrics-2026-11-22",
        "ts-staging-span-2020-01-01",  # another deployment whose prefix starts with ours
        "ts-span-2020-13-40",  # not a date
        "ts-span-2020-01-01-restored",  # someone's copy
        "ts-meta",
        "tsx-span-2020-01-01",
        "other-span-2020-01-01",
    ]
    assert expired_indices(names, "ts", date(2026, 11, 8)) == [
        "ts-servicegraph-2026-11-01",
        "ts-span-2026-11-07",
        "ts-spanmetrics-2025-01-31",
    ]


def test_a_prefix_with_regex_characters_matches_only_itself() -> None:
    assert expired_indices(["a.b-span-2020-01-01", "axb-span-2020-01-01"], "a.b", date(2026, 1, 1)) == [
        "a.b-span-2020-01-01"
    ]


def test_a_span_of_a_deleted_day_is_refused_with_the_reason_and_the_day_before_kept_ones_is_not() -> None:
    oldest = int(datetime(2026, 11, 8, tzinfo=UTC).timestamp()) * NS
    limits = replace(DEFAULT_LIMITS, oldest_start_ns=oldest)
    batch = DecodedBatch()
    admit(batch, make_span(start_ns=oldest - 1, end_ns=oldest + 5), "spans[0]", limits)
    admit(batch, make_span(start_ns=oldest, end_ns=oldest + 5), "spans[1]", limits)
    assert [s.start_ns for s in batch.spans] == [oldest]
    [rejection] = batch.rejected
    assert rejection.where == "spans[0]"
    assert "2026-11-07" in rejection.reason and "2026-11-08" in rejection.reason
    assert "TRACESEARCH_RETENTION" in rejection.reason


def test_without_a_bound_old_spans_pass() -> None:
    batch = DecodedBatch()
    admit(batch, make_span(start_ns=NS, end_ns=2 * NS), "spans[0]", DEFAULT_LIMITS)
    assert len(batch.spans) == 1 and not batch.rejected


def test_retention_settings() -> None:
    assert Settings.from_env({}).retention_s == 14 * DAY
    assert Settings.from_env({"TRACESEARCH_RETENTION": "0"}).retention_s == 0
    assert Settings.from_env({"TRACESEARCH_RETENTION": "30d"}).retention_s == 30 * DAY
    with pytest.raises(SettingsError, match="TRACESEARCH_RETENTION must be 0"):
        Settings.from_env({"TRACESEARCH_RETENTION": "12h"})
    with pytest.raises(SettingsError, match="TRACESEARCH_RETENTION_SWEEP_INTERVAL"):
        Settings.from_env({"TRACESEARCH_RETENTION_SWEEP_INTERVAL": "0s"})


def test_each_tenants_indices_expire_after_its_own_retention_and_unlisted_ones_after_the_default() -> None:
    names = [
        "ts-span-2026-11-07",  # the default tenant's: 14 days
        "ts-span-2026-11-08",
        "ts.short.-span-2026-11-14",  # 7 days: expired
        "ts.short.-spanmetrics-2026-11-15",  # kept
        "ts.short.-servicegraph-2026-11-01",
        "ts.forever.-span-2020-01-01",  # 0: kept for ever
        "ts.other.-span-2026-11-07",  # not listed: the default's 14 days
        "ts.other.-span-2026-11-08",
        "ts.short.-span-2026-11-01-restored",  # not ours
        "ts.short-span-2020-01-01",  # no tenant's (a tenant's prefix ends with a dot)
    ]
    tenants = {"short": 7 * DAY, "forever": 0.0}
    assert expired_of_every_tenant(names, "ts", NOW, 14 * DAY, tenants) == [
        "ts-span-2026-11-07",
        "ts.other.-span-2026-11-07",
        "ts.short.-servicegraph-2026-11-01",
        "ts.short.-span-2026-11-14",
    ]
    # Without tenants (a tenant's own sweeper): only the prefix's own; with a default of 0, only the tenants'.
    assert expired_of_every_tenant(names, "ts", NOW, 14 * DAY, None) == ["ts-span-2026-11-07"]
    assert expired_of_every_tenant(names, "ts", NOW, 0, tenants) == [
        "ts.short.-servicegraph-2026-11-01",
        "ts.short.-span-2026-11-14",
    ]
