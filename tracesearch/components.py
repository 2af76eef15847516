"""The composition root: the objects one process is made of, built from the settings.

Nothing is built before it is first used, so gunicorn's workers create their clients after the fork,
and the threads of one process share them. Only the entry points (``app.create_app``, the CLI's
ingester, gunicorn's hooks through the app) hold a ``Components``; everything below them is handed
exactly what it needs, typed by the contracts (``storage.contracts``, ``pipeline.sink``), and never
imports this module.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar, overload

from elasticsearch import Elasticsearch

from tracesearch import prometheus, tenant_overrides
from tracesearch.admission import Limits
from tracesearch.alerting.evaluate import Evaluator
from tracesearch.alerting.notify.dispatcher import Dispatcher
from tracesearch.alerting.ruleset import RuleSet
from tracesearch.alerting.runner import AlertRunner, RunnerConfig
from tracesearch.alerting.views import AlertStateReader
from tracesearch.codecs import otlp_proto
from tracesearch.pipeline.ingest_limits import IngestConfig, IngestLimiter
from tracesearch.pipeline.sink import DirectSink, SpanSink
from tracesearch.pipeline.store import StorePipeline
from tracesearch.query.limits import QueryLimits
from tracesearch.sampling.adaptive import AdaptiveRunner, AdaptiveSampling
from tracesearch.sampling.adaptive_math import AdaptiveConfig
from tracesearch.sampling.provider import StrategyProvider
from tracesearch.sampling.tail.buffer import DecisionCache, TraceBuffer
from tracesearch.sampling.tail.percentiles import TenantPercentiles
from tracesearch.sampling.tail.policies import PolicyError, load_policy_file
from tracesearch.sampling.tail.sampler import TailSampler
from tracesearch.servicegraph.rollup import written_within_ns
from tracesearch.servicegraph.stage import ServiceGraphStage, StageConfig
from tracesearch.services.latency_rollup import RollupSource
from tracesearch.services.query import QueryService
from tracesearch.services.trace_logs import TraceLogsService
from tracesearch.settings import Settings, SettingsError
from tracesearch.storage.es.aggregate_reader import EsAggregateReader
from tracesearch.storage.es.aggregate_writer import EsAggregateWriter
from tracesearch.storage.es.alert_store import EsAlertStore
from tracesearch.storage.es.client import make_client
from tracesearch.storage.es.health import EsReadiness
from tracesearch.storage.es.log_reader import EsLogReader
from tracesearch.storage.es.native_body import body_builder, native_for
from tracesearch.storage.es.retention import RetentionSweeper, oldest_start_ns
from tracesearch.storage.es.sampling_store import EsSamplingStore
from tracesearch.storage.es.span_lookup import EsSpanLookup
from tracesearch.storage.es.span_reader import EsSpanReader
from tracesearch.storage.es.span_writer import EsSpanWriter
from tracesearch.storage.es.templates import TemplateInstaller
from tracesearch.tenancy import TooManyTenants
from tracesearch.tenant_overrides import TenantOverrides

T = TypeVar("T")


class once(Generic[T]):
    """A component built on first use, once per process even when the first requests race (one lock
    for every component, so building one that needs another cannot deadlock)."""

    def __init__(self, build: Callable[[Any], T]):
        self._build = build
        self._name = build.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> once[T]: ...

    @overload
    def __get__(self, obj: Components, owner: type) -> T: ...

    def __get__(self, obj: Components | None, owner: type) -> once[T] | T:
        if obj is None:
            return self
        built = obj.__dict__
        if self._name not in built:
            with obj.lock:
                if self._name not in built:
                    built[self._name] = self._build(obj)
        value: T = built[self._name]
        return value


class Components:
    """The components of the default tenant (``root``), or of one tenant (``for_tenant``): a tenant's
    have the root's settings with its own index prefix and its overrides (``TRACESEARCH_TENANTS_FILE``),
    and share the root's clients and identity."""

    def __init__(self, settings: Settings, tenant: str | None = None, root: Components | None = None):
        self.settings = settings
        self.tenant = tenant
        self.root = root or self
        self.lock: threading.RLock = threading.RLock() if root is None else root.lock
        self._receive_limits: Limits | None = None
        self._tenants: dict[str, Components] = {}
        # Read once, at start: a bad file stops the process here (gunicorn.conf.py says so earlier).
        self.overrides: TenantOverrides = tenant_overrides.load(settings) if root is None else root.overrides
        if root is None:  # the compiled core decodes OTLP protobuf where TRACESEARCH_NATIVE allows it
            otlp_proto.use_native(native_for(settings.native))
        if root is not None:  # one client and one name per process, whichever tenant uses them
            self.__dict__["_es"] = root._es
            self.__dict__["process_token"] = root.process_token
            self.__dict__["readiness"] = root.readiness

    # -- tenants

    def for_tenant(self, tenant: str | None) -> Components:
        """The components of ``tenant`` (None: the default tenant's, the root), built on first use."""
        root = self.root
        if tenant is None:
            return root
        found = root._tenants.get(tenant)
        if found is not None:
            return found
        with root.lock:
            found = root._tenants.get(tenant)
            if found is None:
                if len(root._tenants) >= root.settings.max_tenants:
                    raise TooManyTenants(
                        f"this process serves {len(root._tenants)} tenants already (TRACESEARCH_MAX_TENANTS)"
                    )
                found = Components(root.tenant_settings(tenant), tenant=tenant, root=root)
                root._tenants[tenant] = found
        return found

    def tenant_settings(self, tenant: str) -> Settings:
        """The settings ``tenant``'s components are built from: the root's, with the tenant's index prefix,
        no strategies or rules file but its own, and its overrides."""
        return self.overrides.apply(self.root.settings, tenant)

    def listed_tenants(self) -> list[Components]:
        """The components of the tenants the overrides file lists (built now): their runners start with
        the process."""
        return [self.for_tenant(name) for name in self.overrides.tenants()] if self.root is self else []

    def tenants(self) -> dict[str, Components]:
        """The tenants this process has served so far, by name."""
        return dict(self.root._tenants)

    # -- Elasticsearch

    @once
    def _es(self) -> Elasticsearch:
        return make_client(self.settings)

    @once
    def _templates(self) -> TemplateInstaller:
        return TemplateInstaller(self._es, self.settings)

    @once
    def readiness(self) -> EsReadiness:
        return EsReadiness(self._es)

    @once
    def span_writer(self) -> EsSpanWriter:
        s = self.settings
        return EsSpanWriter(
            self._es,
            s.index_prefix,
            retries=s.bulk_retries,
            concurrency=s.bulk_concurrency,
            prepare=self._templates.ensure,
            build_body=body_builder(s.native),
        )

    @once
    def span_reader(self) -> EsSpanReader:
        s = self.settings
        return EsSpanReader(
            self._es,
            s.index_prefix,
            s.trace_lookback_s,
            s.max_trace_duration_s,
            search_timeout_s=s.query_timeout_s,
            search_each_trace=s.index_sort_by_trace,
        )

    @once
    def aggregate_reader(self) -> EsAggregateReader:
        return EsAggregateReader(self._es, self.settings.index_prefix)

    @once
    def log_reader(self) -> EsLogReader:
        # The spans' cluster: logs elsewhere would need their own URL, credentials and TLS settings.
        return EsLogReader(self._es, self.settings.logs_index, self.settings.logs_trace_id_field)

    @once
    def retention(self) -> RetentionSweeper:
        """The root's sweeps every tenant's indices too, each with its retention."""
        s = self.settings
        tenants = self.overrides.retentions(s) if self.root is self else None
        return RetentionSweeper(
            self._es, s.index_prefix, s.retention_s, on_deleted=prometheus.INDICES_DELETED.inc, tenants=tenants
        )

    @once
    def sampling_store(self) -> EsSamplingStore:
        return EsSamplingStore(self._es, self.settings.index_prefix, replicas=self.settings.index_replicas)

    @once
    def alert_store(self) -> EsAlertStore:
        """The alerts' lease, state and events (the alerts API reads it through ``current``/``history``)."""
        return EsAlertStore(self._es, self.settings.index_prefix, replicas=self.settings.index_replicas)

    # -- what the APIs and the pipeline use

    @once
    def process_token(self) -> str:
        """Names this process in what it writes (aggregate documents, the sampling lease); the random
        part survives pid reuse."""
        return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    @once
    def adaptive_sampling(self) -> AdaptiveSampling | None:
        """The strategy provider's adaptive source (None: TRACESEARCH_SAMPLING_ADAPTIVE is off)."""
        if not self.settings.sampling_adaptive:
            return None
        return AdaptiveSampling(self.sampling_store, AdaptiveConfig.from_settings(self.settings))

    @once
    def adaptive_runner(self) -> AdaptiveRunner | None:
        source = self.adaptive_sampling
        if source is None:
            return None
        config = AdaptiveConfig.from_settings(self.settings)
        return AdaptiveRunner(self.sampling_store, self.aggregate_reader, source, config, self.process_token)

    @once
    def query(self) -> QueryService:
        s = self.settings
        rollups = None
        # The rollups count every span that reached the stage, the ones tail sampling drops too; the span
        # path counts the stored ones. With a policy file the two differ: answer from the spans.
        if s.servicegraph_enabled and not s.tail_sampling_policy_file:
            lag_ns = written_within_ns(s.servicegraph_flush_interval_s)
            rollups = RollupSource(self.aggregate_reader, self.span_reader, lag_ns)
        return QueryService(
            self.span_reader, self.aggregate_reader, limits=QueryLimits.from_settings(s), rollups=rollups
        )

    @once
    def alert_runner(self) -> AlertRunner | None:
        """The alert evaluator (None: TRACESEARCH_ALERTS_ENABLED is off)."""
        s = self.settings
        if not s.alerts_enabled:
            return None
        config = RunnerConfig(
            interval_s=s.alerts_interval_s,
            grafana_url=s.grafana_url,
            grafana_tempo_uid=s.grafana_tempo_uid,
            base_url=s.alerts_external_url or f"http://127.0.0.1:{s.port}",
            tenant=self.tenant,
        )
        dispatcher = Dispatcher.from_settings(s)
        rules = self.alert_rules.rules
        return AlertRunner(
            self.alert_store, self.query, self.alert_evaluator, rules, dispatcher, config, self.process_token
        )

    @once
    def trace_logs(self) -> TraceLogsService:
        s = self.settings
        # A tenant reads the logs of its own stored traces only (see the service).
        return TraceLogsService(
            self.span_reader,
            self.log_reader,
            s.logs_time_margin_s,
            s.trace_lookback_s,
            stored_only=self.tenant is not None,
        )

    @once
    def sampling(self) -> StrategyProvider:
        s = self.settings
        adaptive = self.adaptive_sampling
        return StrategyProvider(
            s.sampling_strategies_file,
            reload_interval_s=s.sampling_reload_interval_s,
            default_probability=s.sampling_default_probability,
            adaptive=adaptive,
            adaptive_lower_bound_tps=adaptive.lower_bound_tps() if adaptive else 0.0,
        )

    @once
    def alert_rules(self) -> RuleSet:
        s = self.settings
        return RuleSet(
            s.alerts_rules_file,
            reload_interval_s=s.alerts_reload_interval_s,
            on_state=prometheus.publish_alert_rules,
        )

    @once
    def alert_state(self) -> AlertStateReader:
        """What the alerts API reads of the alert state: the evaluator's store."""
        return self.alert_store

    @once
    def alert_evaluator(self) -> Evaluator:
        """Rules evaluated through span metrics or the query service (the runner and `alerts test`)."""
        return Evaluator(self.query, self.aggregate_reader)

    @once
    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            max_attributes_per_span=s.max_attributes_per_span,
            max_attribute_value_bytes=s.max_attribute_value_bytes,
            max_nesting_depth=s.max_nesting_depth,
        )

    @once
    def ingest_limiter(self) -> IngestLimiter:
        """This tenant's spans per request and per second in this process."""
        s = self.settings
        config = IngestConfig(s.ingest_spans_per_second, s.ingest_burst_spans, s.max_spans_per_request)
        label = self.tenant or ""

        def refused(reason: str, spans: int) -> None:
            prometheus.INGEST_REFUSED.labels(label, reason).inc(spans)

        return IngestLimiter(config, self.tenant, on_refused=refused)

    def receive_limits(self) -> Limits:
        """``limits`` plus the retention's bound on span starts: for receivers, the edge. (Ingesters
        store what a receiver accepted; a span of a day deleted since is deleted with its day.)"""
        oldest = oldest_start_ns(time.time(), self.settings.retention_s)
        cached = self._receive_limits
        if cached is None or cached.oldest_start_ns != oldest:
            cached = self._receive_limits = replace(self.limits, oldest_start_ns=oldest)
        return cached

    @once
    def servicegraph(self) -> ServiceGraphStage | None:
        s = self.settings
        if not s.servicegraph_enabled:
            return None
        config = StageConfig(
            wait_s=s.servicegraph_wait_s,
            max_pending=s.servicegraph_max_pending,
            flush_interval_s=s.servicegraph_flush_interval_s,
            max_series=s.servicegraph_max_series,
        )
        return ServiceGraphStage(
            config,
            EsSpanLookup(self._es, s.index_prefix, s.max_trace_duration_s),
            EsAggregateWriter(self._es, s.index_prefix, prepare=self._templates.ensure),
            prometheus.servicegraph_publisher(self.tenant),
            process=self.process_token,
        )

    @once
    def tail_sampler(self) -> TailSampler | None:
        """The Kafka ingester's tail sampler, when a policy file is set (read once, at start)."""
        s = self.settings
        if not s.tail_sampling_policy_file:
            return None
        try:
            percentiles = TenantPercentiles(self._aggregate_reader_of) if s.servicegraph_enabled else None
            decider = load_policy_file(s.tail_sampling_policy_file, percentiles)
        except PolicyError as exc:
            raise SettingsError(f"TRACESEARCH_TAIL_SAMPLING_POLICY_FILE: {exc}") from None
        return TailSampler(
            decider,
            TraceBuffer(s.tail_sampling_wait_s, s.tail_sampling_max_spans, s.tail_sampling_max_bytes),
            DecisionCache(s.tail_sampling_decision_cache),
            prometheus.TailSamplingMetrics(),
        )

    def _aggregate_reader_of(self, tenant: str | None) -> EsAggregateReader:
        return self.for_tenant(tenant).aggregate_reader

    @once
    def store_pipeline(self) -> StorePipeline:
        stage = self.servicegraph
        return StorePipeline(self.span_writer, observers=[stage.observe] if stage is not None else [])

    @once
    def sink(self) -> SpanSink:
        if self.settings.pipeline != "kafka":
            return DirectSink(self.store_pipeline)
        from tracesearch.pipeline.kafka_sink import KafkaSink

        if self.tenant is None:
            return KafkaSink(self.settings)
        # One producer per process, the root's; the tenant goes with each message, for the ingester.
        root_sink = self.root.sink
        assert isinstance(root_sink, KafkaSink)
        return root_sink.for_tenant(self.tenant)

    def store_pipeline_of(self, tenant: str | None) -> StorePipeline:
        """``tenant``'s store pipeline (the Kafka ingester routes each record's spans by its tenant);
        raises ``TooManyTenants`` past TRACESEARCH_MAX_TENANTS."""
        return self.for_tenant(tenant).store_pipeline

    # -- the process's life

    def start_retention(self) -> None:
        """Delete expired indices now and then in this process (gunicorn starts it in every worker:
        sweeps are idempotent, and a worker that dies takes no schedule with it)."""
        self.retention.start(self.settings.retention_sweep_interval_s)

    def start_adaptive_sampling(self) -> None:
        """With TRACESEARCH_SAMPLING_ADAPTIVE on, every worker runs the runner: they contend for one
        lease, so one computes; a worker that dies lets another take over when its lease expires."""
        runner = self.adaptive_runner
        if runner is not None:
            runner.start()
        for child in self.listed_tenants():
            child.start_adaptive_sampling()

    def start_alert_rules(self) -> None:
        """Watch the alert rules file from this process (every worker: each holds its own copy), and
        those of the tenants the overrides file lists."""
        self.alert_rules.start()
        for child in self.listed_tenants():
            child.start_alert_rules()

    def start_alerts(self) -> None:
        """With TRACESEARCH_ALERTS_ENABLED on, every worker runs the evaluator loop: they contend for one
        fenced lease, so one evaluates; another takes over within the lease (three intervals)."""
        runner = self.alert_runner
        if runner is not None:
            runner.start()
        for child in self.listed_tenants():
            if child.settings.alerts_rules_file:  # no rules, nothing to evaluate: no lease taken either
                child.start_alerts()

    def close(self) -> None:
        """Flush what the process still holds (gunicorn worker exit, SIGTERM), every tenant's too."""
        for child in self.tenants().values() if self.root is self else ():
            child.close()
        built = self.__dict__
        if "sink" in built:
            built["sink"].close()
        if built.get("servicegraph") is not None:
            built["servicegraph"].close()
        if "retention" in built:
            built["retention"].stop()
        if built.get("adaptive_runner") is not None:
            built["adaptive_runner"].stop()
        if "alert_rules" in built:
            built["alert_rules"].stop()
        if built.get("alert_runner") is not None:
            built["alert_runner"].stop()
