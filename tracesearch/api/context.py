"""What a view may use of the process's components, typed here so that views never import the
composition root (``tracesearch.components``): ``create_app`` puts it in ``app.extensions``."""

from __future__ import annotations

from typing import Protocol, cast

from flask import current_app, g, has_request_context

from tracesearch.admission import Limits
from tracesearch.alerting.ruleset import RuleSet
from tracesearch.alerting.views import AlertStateReader
from tracesearch.pipeline.ingest_limits import IngestLimiter
from tracesearch.pipeline.sink import SpanSink
from tracesearch.sampling.provider import StrategyProvider
from tracesearch.services.query import QueryService
from tracesearch.services.trace_logs import TraceLogsService
from tracesearch.settings import Settings
from tracesearch.storage.contracts import Readiness

EXTENSION = "tracesearch"


class AppServices(Protocol):
    settings: Settings

    @property
    def query(self) -> QueryService: ...

    @property
    def trace_logs(self) -> TraceLogsService: ...

    @property
    def sink(self) -> SpanSink: ...

    @property
    def readiness(self) -> Readiness: ...

    @property
    def ingest_limiter(self) -> IngestLimiter: ...

    @property
    def sampling(self) -> StrategyProvider: ...

    @property
    def alert_rules(self) -> RuleSet: ...

    @property
    def alert_state(self) -> AlertStateReader: ...

    def receive_limits(self) -> Limits: ...

    def for_tenant(self, tenant: str | None) -> AppServices: ...


def services() -> AppServices:
    """The components of the request's tenant (``auth`` chose it before the view runs)."""
    root = cast(AppServices, current_app.extensions[EXTENSION])
    tenant = g.get("tenant") if has_request_context() else None
    return root if tenant is None else root.for_tenant(tenant)


def query() -> QueryService:
    return services().query


def trace_logs() -> TraceLogsService:
    return services().trace_logs


def settings() -> Settings:
    return services().settings


def sampling() -> StrategyProvider:
    return services().sampling


def alert_rules() -> RuleSet:
    return services().alert_rules


def alert_state() -> AlertStateReader:
    return services().alert_state
