"""The contracts between the services above storage and a store: what a store must do, not how.

Two stores keep them: Elasticsearch (``storage/es/``) and the in-memory twin (``storage/memory.py``).
One conformance suite (``tests/storage_conformance.py``) checks both against every promise written here.
Stores raise only the errors of this module; what HTTP status they become is the API layer's choice.

Times are nanoseconds since the epoch; a time window holds the spans whose start, in whole
milliseconds, is within it (bounds included). A trace is a list of spans sorted by start time (then span
id, then kind). Span search
takes ``query.conditions`` (every condition must hold on one span); attribute names are scoped
(``span.http.method``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tracesearch.alerting.state import AlertState, Transition
from tracesearch.alerting.views import AlertEvent, AlertView
from tracesearch.model import Span
from tracesearch.query.conditions import Condition, TraceQuery
from tracesearch.query.span_aggregation import SpanAggregation, SpanSeries
from tracesearch.servicegraph.aggregator import Snapshot
from tracesearch.servicegraph.histogram import BOUNDS, BUCKETS
from tracesearch.servicegraph.model import ParentInfo, SpanRef


class StorageError(Exception):
    """Base of what a store raises."""


class StorageUnavailable(StorageError):
    """The store could not be reached or kept refusing (429/5xx) after our retries; retry later."""


class UnsupportedQuery(StorageError):
    """The store cannot run this query as asked (a limit of its own, a value out of its range): the
    asker's to change, not a failure of the store."""


@dataclass(slots=True)
class RejectedSpan:
    span: Span
    reason: str


@dataclass(slots=True)
class WriteResult:
    """Outcome of a write. ``stored`` counts spans that are durable, duplicates included;
    ``created`` lists the spans this write stored for the first time (a replay's duplicates are not in
    it), so that per-span processing downstream counts each span once."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedSpan] = field(default_factory=list)
    created: list[Span] = field(default_factory=list)

    def add(self, other: WriteResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)
        self.created.extend(other.created)


class SpanWriter(Protocol):
    def write(self, spans: Sequence[Span]) -> WriteResult:
        """Store spans idempotently; return only once every stored span is durable and searchable
        within the store's refresh interval.

        A span already stored (same trace id, span id and kind) counts as stored, not created. A span
        the store refuses for good comes back in ``rejected`` with the reason. If the store is
        unreachable or overloaded past the retries, raise ``StorageUnavailable``: then nothing can be
        promised about the batch and the caller must retry it whole (safe, since writes are idempotent).
        """
        ...


class SpanReader(Protocol):
    def get_trace(
        self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None, max_spans: int | None = None
    ) -> list[Span]:
        """Every span of the trace (any size), sorted by start; [] when unknown. Without a range the
        store looks back as far as it is configured to (``TRACESEARCH_TRACE_LOOKBACK``).

        With ``max_spans``, at most that many: the earliest, in the order of a trace (start, then span
        id, then kind), read without holding the trace's other spans (a runaway trace of millions of
        spans costs no more than ``max_spans`` of them). Every method that returns traces takes it."""
        ...

    def trace_extent(
        self, trace_id: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> tuple[int, int] | None:
        """(first start, an end no earlier than the last end) of the trace, read without its spans (a
        runaway trace costs one aggregation); None when unknown. The range as ``get_trace``'s."""
        ...

    def find_traces(self, query: TraceQuery, max_spans: int | None = None) -> list[list[Span]]:
        """Whole traces with at least one span in the window meeting every condition, newest first
        (by their newest such span), at most ``query.limit``; each cut to ``max_spans`` as ``get_trace``."""
        ...

    def candidate_traces(
        self, conditions: Sequence[Condition], start_ns: int, end_ns: int, size: int
    ) -> list[tuple[str, int]]:
        """(trace id, start of its newest matching span) of the newest ``size`` traces with a span in
        [start_ns, end_ns] meeting every condition, newest first; page on by lowering ``end_ns``."""
        ...

    def traces(
        self, trace_ids: Sequence[str], start_ns: int, end_ns: int, max_spans: int | None = None
    ) -> dict[str, list[Span]]:
        """Every span of these traces, by trace id; a trace may stick out of the range by the maximum
        trace duration (``TRACESEARCH_MAX_TRACE_DURATION``); each cut to ``max_spans`` as ``get_trace``."""
        ...

    def services(self) -> list[str]:
        """Service names of the look-back window, sorted."""
        ...

    def operations(
        self, service: str, span_kind: str | None = None, ignore_case: bool = False
    ) -> list[tuple[str, str]]:
        """(span name, span kind) pairs of a service, sorted; ``span_kind`` (``server``...) narrows;
        ``ignore_case``: the service name compared ignoring ASCII case (Zipkin's)."""
        ...

    def tag_names(
        self, scope: str, start_ns: int | None, end_ns: int | None, limit: int, conditions: Sequence[Condition]
    ) -> list[str]:
        """Attribute keys of a scope (``span``, ``resource``...) on spans meeting the conditions, without
        the scope, most frequent first. May be sampled (a rare key can be missed); without a range the
        last 24 hours."""
        ...

    def attribute_values(
        self,
        scope: str,
        key: str,
        start_ns: int | None,
        end_ns: int | None,
        limit: int,
        conditions: Sequence[Condition],
    ) -> list[str]:
        """Values of an attribute as text (``query.span_terms.stringify``), most frequent first; sampled."""
        ...

    def numeric_attribute_values(
        self,
        scope: str,
        key: str,
        candidates: Sequence[str],
        start_ns: int | None,
        end_ns: int | None,
        conditions: Sequence[Condition],
    ) -> set[str]:
        """Which of the candidate texts some span holds as a number under the key (500 vs "500")."""
        ...

    def intrinsic_values(
        self, name: str, start_ns: int | None, end_ns: int | None, limit: int, conditions: Sequence[Condition]
    ) -> list[str] | None:
        """Values of ``name``, ``status``, ``kind``, ``statusMessage``, ``rootName``, ``rootServiceName``
        (root spans only), ``event:name``, ``instrumentation:name``; None for another name."""
        ...

    def remote_service_names(self, service: str, start_ns: int, end_ns: int, ignore_case: bool = False) -> list[str]:
        """The remote services (``query.remote_service``) the service's spans in the window name, sorted;
        ``ignore_case``: the service named ignoring ASCII case. May be sampled, like autocomplete."""
        ...

    def aggregate_spans(self, request: SpanAggregation) -> list[SpanSeries]:
        """Per group and step, the spans meeting the conditions and the value the request asks for
        (TraceQL metrics over span documents).
        At most 100 values per group field. Quantiles may be approximate."""
        ...


@dataclass(frozen=True, slots=True)
class DependencyLink:
    """Calls from one service to another over a time range (Jaeger's and Zipkin's dependency link)."""

    parent: str
    child: str
    call_count: int
    error_count: int


@dataclass(slots=True)
class MetricsPoint:
    """One step of a series: calls, errors and the latency histogram (seconds) of the step.

    ``bucket_counts[i]`` counts durations in ``(BOUNDS[i-1], BOUNDS[i]]``; ``histogram.quantile(bucket_counts,
    BOUNDS, q)`` is within 5 % of the exact quantile.
    """

    time_ns: int  # start of the step
    calls: int = 0
    errors: int = 0
    latency_sum_s: float = 0.0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, calls: int, errors: int, latency_sum_s: float, buckets: Mapping[int, int]) -> None:
        self.calls += calls
        self.errors += errors
        self.latency_sum_s += latency_sum_s
        for index, count in buckets.items():
            self.bucket_counts[index] += count

    def merge(self, other: MetricsPoint) -> None:
        self.calls += other.calls
        self.errors += other.errors
        self.latency_sum_s += other.latency_sum_s
        self.bucket_counts = [a + b for a, b in zip(self.bucket_counts, other.bucket_counts, strict=True)]


@dataclass(slots=True)
class LatencyStep:
    """One step of a per-service rollup series: its start, the spans and their sparse histogram
    (``servicegraph.histogram`` bucket -> spans)."""

    time_ns: int
    calls: int = 0
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, calls: int, buckets: Mapping[int, int]) -> None:
        self.calls += calls
        for index, count in buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count


@dataclass(slots=True)
class LatencySeries:
    service: str | None  # with ``by_service``; else None (one series)
    steps: list[LatencyStep]  # steps with spans, oldest first


@dataclass(slots=True)
class SpanMetricsSeries:
    labels: dict[str, str]  # only the labels asked for in ``by``
    points: list[MetricsPoint]  # steps with at least one call, oldest first
    bounds: tuple[float, ...] = BOUNDS


@dataclass(slots=True)
class EdgeStats:
    client: str
    server: str
    connection_type: str
    calls: int
    errors: int
    latency_sum_s: float  # server-side latency
    bucket_counts: list[int]
    bounds: tuple[float, ...] = BOUNDS


class AggregateWriter(Protocol):
    def write(self, snapshot: Snapshot, process: str) -> None:
        """Store one process's partial aggregates of a flush idempotently (same snapshot and process:
        same records); raise ``StorageUnavailable``, and the caller keeps the snapshot to try again."""
        ...


class AggregateReader(Protocol):
    """The service graph and the per-minute span metrics (RED), added up over every process's partial
    aggregates; one-minute resolution: a minute is in a range when its start is in
    [start rounded down to the minute, end]."""

    def dependencies(self, start_ns: int, end_ns: int, service: str | None = None) -> list[DependencyLink]:
        """Calls per (client, server) pair, summed over connection types; with ``service``, only the
        links it is a side of. Sorted by parent, child."""
        ...

    def span_metrics(
        self,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        filters: Mapping[str, str] | None = None,
        by: Sequence[str] = (),
    ) -> list[SpanMetricsSeries]:
        """Per-step calls, errors and latency histograms of spans grouped by the ``by`` labels (any of
        service, span_name, span_kind, status_code), keeping spans whose labels equal ``filters``
        (``server`` / ``SPAN_KIND_SERVER``, ``error`` / ``STATUS_CODE_ERROR`` alike)."""
        ...

    def calls_per_step(
        self,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        filters: Mapping[str, str],
        by: Sequence[str],
        max_groups: int = 100,
    ) -> list[tuple[tuple[str, ...], list[tuple[int, int]]]]:
        """(by-label values in TraceQL's spelling, [(step start ms, calls)]) of steps with calls, for
        spans whose labels equal ``filters``, in [start_ns, end_ns)."""
        ...

    def service_edges(self, start_ns: int, end_ns: int) -> list[EdgeStats]:
        """Calls, errors and server latency per edge over the whole range (for a node graph)."""
        ...


class LatencyRollups(Protocol):
    """The per-service latency rollups (``servicegraph.rollup``): per minute and service, one document per
    process when the minute has gone quiet; a reader adds them up."""

    def service_latency(
        self, start_ns: int, end_ns: int, step_ns: int, service: str | None, by_service: bool
    ) -> list[LatencySeries]:
        """Per-step calls and latency histograms of the minutes in [start_ns, end_ns) (steps start at
        ``start_ns``): of ``service``, or of every service together, or (``by_service``) per service."""
        ...

    def service_latency_first(self, start_ns: int, end_ns: int) -> int | None:
        """Start (ns) of the first minute in [start_ns, end_ns) with a rollup, None if there is none."""
        ...


class SpanPresence(Protocol):
    def has_spans(self, start_ns: int, end_ns: int) -> bool:
        """Whether any span starting in [start_ns, end_ns) is stored."""
        ...


class SpanLookup(Protocol):
    """The service-graph stage's questions to stored spans (spans stored by any process)."""

    def parents(self, refs: Sequence[SpanRef]) -> dict[tuple[str, str], ParentInfo]:
        """Stored spans with the (trace id, span id) of ``refs``, by that pair; of Zipkin's two halves of
        a shared span, the server one."""
        ...

    def served(self, refs: Sequence[SpanRef]) -> set[tuple[str, str]]:
        """(trace id, span id) of the ``refs`` that have a stored child in another service, or a stored
        server/consumer child (or shared server half) in their own."""
        ...


class Readiness(Protocol):
    def status(self) -> str:
        """A word on the store's health ("green"); raise ``StorageUnavailable`` when it cannot serve."""
        ...


@dataclass(frozen=True, slots=True)
class LogLines:
    """Log lines of one search: each the document as the logs index holds it (ECS ``@timestamp``,
    ``log.level``, ``message``, ``trace.id``...), with ``_index`` and ``_id`` added."""

    lines: list[dict[str, Any]]
    truncated: bool  # more lines matched than were asked for


class LogReader(Protocol):
    """The team's logs, in indices tracesearch reads but never writes (Filebeat, Elastic Agent...)."""

    @property
    def index(self) -> str:
        """The index name or pattern searched."""
        ...

    @property
    def field(self) -> str:
        """The field holding a line's trace id."""
        ...

    def trace_logs(self, trace_id: str, start_ns: int, end_ns: int, limit: int) -> LogLines:
        """Lines whose trace-id field holds ``trace_id`` (32 lowercase hex digits; also its 16-digit form
        when the high half is zero) with ``@timestamp`` in [start_ns, end_ns] (milliseconds, bounds
        included), oldest first, at most ``limit``. No index matching the pattern is no lines."""
        ...


@dataclass(frozen=True, slots=True)
class OperationSampling:
    """The adaptive head-sampling probability of one root operation, and what it was computed from."""

    service: str
    operation: str
    probability: float
    observed_tps: float  # sampled traces per second seen in the last window read
    estimated_tps: float  # the real rate: observed / the probability in effect then
    changed_at_s: float  # when ``probability`` last changed (clients follow it some time later)
    last_seen_s: float  # end of the last window in which the operation had traffic


@dataclass(frozen=True, slots=True)
class SamplingState:
    """The output of one adaptive-sampling computation (the input of the next)."""

    window_end_s: float  # end of the span-metrics window it was computed from
    computed_at_s: float
    holder: str  # the process that computed it
    operations: tuple[OperationSampling, ...] = ()


# Opaque to callers: what ``read_state`` saw, handed back to ``write_state`` (None: nothing stored).
StateVersion = tuple[int, int] | None


class SamplingStore(Protocol):
    """The adaptive sampler's lease (one process computes) and its stored output (every process reads)."""

    def acquire_lease(self, holder: str, ttl_s: float) -> bool:
        """Take or renew the one lease: True when ``holder`` now holds it for ``ttl_s`` seconds (it was
        free, expired, or already ``holder``'s); False when another holder's lease has not expired, or
        another process took it at the same moment. Expiry is judged on the caller's clock."""
        ...

    def release_lease(self, holder: str) -> None:
        """Give the lease up if ``holder`` holds it, so another process takes over at once."""
        ...

    def read_state(self) -> tuple[SamplingState | None, StateVersion]:
        """The stored output (None: nothing computed yet) and its version."""
        ...

    def write_state(self, state: SamplingState, version: StateVersion) -> bool:
        """Store ``state`` only if the stored output is still the one read at ``version``; False (and
        nothing written) when another process wrote since."""
        ...


# -- alerting: the evaluator's lease with fencing, the alerts' state and their history


class AlertWrite:
    """What ``AlertStateStore.write_alert`` did."""

    WRITTEN = "written"
    CONFLICT = "conflict"  # another write came since the version read: read it again and decide again
    FENCED = "fenced"  # the stored alert was written under a newer lease: this writer lost its lease


@dataclass(frozen=True, slots=True)
class StoredAlert:
    alert: AlertState
    token: int  # the fencing token of the lease its writer held
    version: StateVersion


class AlertStateStore(Protocol):
    """The alert evaluator's lease (one process evaluates) and what it keeps: one document per alert
    (rule and label set), written under the lease's fencing token, and every transition as an event."""

    def acquire_lease(self, holder: str, ttl_s: float) -> int | None:
        """Take or renew the lease for ``ttl_s`` seconds: its fencing token when ``holder`` holds it,
        None when another holder's lease has not expired (or it was taken at the same moment). The token
        grows each time the lease changes hands (or is taken after expiring) and stays the same on
        renewals. Expiry is judged on the caller's clock."""
        ...

    def release_lease(self, holder: str) -> None:
        """Give the lease up if ``holder`` holds it."""
        ...

    def load_alerts(self) -> dict[str, StoredAlert]:
        """Every stored alert by fingerprint, as written so far by any process (``ok`` ones included)."""
        ...

    def get_alert(self, fingerprint: str) -> StoredAlert | None:
        """One stored alert, as last written (real time)."""
        ...

    def write_alert(self, alert: AlertState, token: int, version: StateVersion) -> tuple[str, StateVersion]:
        """Store ``alert`` under fencing token ``token`` if the stored one is still at ``version`` (None:
        none stored) and was not written under a newer token; answer (outcome, the new version when
        written): ``AlertWrite.WRITTEN``; ``FENCED`` when the stored one carries a newer token (an older
        token never overwrites a newer one); ``CONFLICT`` when it changed since ``version`` under an
        older or equal token."""
        ...

    def add_events(self, events: Sequence[Transition], token: int) -> None:
        """Store transitions as events (idempotent: the same transition twice is one event)."""
        ...

    def current(self) -> list[AlertView]:
        """Every pending or firing alert, by rule name then fingerprint (``views.AlertStateReader``)."""
        ...

    def history(self, rule: str | None, since_ns: int | None, limit: int) -> list[AlertEvent]:
        """Transitions, newest first: of ``rule`` only when given, at or after ``since_ns`` when given,
        at most ``limit``."""
        ...
