"""The storage conformance suite: every promise of ``tracesearch.storage.contracts``, one test each,
run against every store (in the manner of Zipkin's ``ITSpanStore``).

A test module subclasses ``StorageConformance`` and provides the ``store`` fixture: the in-memory store
in tests/unit/storage/test_memory_conformance.py, the real Elasticsearch (8 in ``make test``, 9 in
``make test-es9``) in tests/integration/test_es_conformance.py. Tests share one store per module, so
each writes spans of services and traces of its own and asks only about those.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from tracesearch.model import Attributes, Event, Resource, Scope, Span, SpanKind, StatusCode, ZipkinOrigin
from tracesearch.query.conditions import (
    All,
    Any,
    AttrEquals,
    AttrExists,
    AttrMatches,
    AttrRange,
    Condition,
    FieldEquals,
    FieldMatches,
    FieldRange,
    Not,
    Nothing,
    Text,
    TraceQuery,
    tag_equals,
)
from tracesearch.query.span_aggregation import GroupBy, SeriesBucket, SpanAggregation
from tracesearch.servicegraph.aggregator import Aggregator, Snapshot
from tracesearch.servicegraph.model import Call, SpanRef
from tracesearch.servicegraph.rollup import ServiceLatency
from tracesearch.storage.contracts import (
    AggregateReader,
    AggregateWriter,
    LatencyRollups,
    SpanLookup,
    SpanPresence,
    SpanReader,
    SpanWriter,
)

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
MINUTE = 60 * NS_PER_S


@dataclass
class Store:
    """One store under test, and how to make what was written searchable now."""

    writer: SpanWriter
    reader: SpanReader
    aggregate_writer: AggregateWriter
    aggregates: AggregateReader
    lookup: SpanLookup
    refresh: Callable[[], None]
    now_ns: int
    rollups: LatencyRollups
    presence: SpanPresence


def new_trace_id() -> str:
    return f"{random.getrandbits(128):032x}"


def new_span_id() -> str:
    return f"{random.getrandbits(64):016x}"


@dataclass
class Builder:
    """Spans of a test's own services, starting at ``base_ns`` (a few minutes before now)."""

    base_ns: int
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def service(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def span(
        self,
        service: str,
        name: str = "op",
        trace_id: str | None = None,
        span_id: str | None = None,
        parent: str = "",
        at_ms: float = 0,
        duration_ms: float = 1,
        kind: SpanKind = SpanKind.INTERNAL,
        status: StatusCode = StatusCode.UNSET,
        message: str = "",
        attributes: Attributes | None = None,
        resource: Attributes | None = None,
        events: list[Event] | None = None,
        scope: Scope | None = None,
        at_ns: int | None = None,
    ) -> Span:
        """At ``at_ms`` after ``base_ns``, or exactly at ``at_ns``."""
        start = at_ns if at_ns is not None else self.base_ns + int(at_ms * NS_PER_MS)
        service_name = self.service(service)
        return Span(
            trace_id=trace_id or new_trace_id(),
            span_id=span_id or new_span_id(),
            name=name,
            start_ns=start,
            end_ns=start + int(duration_ms * NS_PER_MS),
            resource=Resource({"service.name": service_name, **(resource or {})}, service_name),
            scope=scope or Scope("conformance", "1.0"),
            parent_span_id=parent,
            kind=kind,
            status_code=status,
            status_message=message,
            attributes=dict(attributes or {}),
            events=events or [],
        )


class StorageConformance:
    """Subclasses provide ``store`` (module-scoped)."""

    @pytest.fixture
    def b(self, store: Store) -> Builder:
        return Builder(store.now_ns - 10 * MINUTE)

    # ------------------------------------------------------------------------------------------ helpers

    def write(self, store: Store, spans: Sequence[Span]) -> None:
        result = store.writer.write(spans)
        assert (result.stored, result.rejected) == (len(spans), [])
        store.refresh()

    def find(self, store: Store, b: Builder, *conditions: Condition, limit: int = 20) -> list[str]:
        """Trace ids found in the builder's hour, newest first."""
        query = TraceQuery(b.base_ns - 30 * MINUTE, b.base_ns + 30 * MINUTE, list(conditions), limit)
        return [trace[0].trace_id for trace in store.reader.find_traces(query)]

    def one_each(self, store: Store, b: Builder, spans: list[Span]) -> dict[str, str]:
        """Write each span as its own trace; trace id by span name."""
        self.write(store, spans)
        return {s.name: s.trace_id for s in spans}

    # ------------------------------------------------------------------------------------------ writes

    def test_a_write_is_idempotent_and_says_what_it_created(self, store: Store, b: Builder) -> None:
        trace = new_trace_id()
        spans = [b.span("w", trace_id=trace, at_ms=i) for i in range(3)]
        first = store.writer.write(spans)
        again = store.writer.write(spans)
        assert (first.stored, first.duplicates, len(first.created)) == (3, 0, 3)
        assert (again.stored, again.duplicates, again.created) == (3, 3, [])
        store.refresh()
        assert [s.span_id for s in store.reader.get_trace(trace)] == [s.span_id for s in spans]

    def test_the_client_and_server_halves_of_a_shared_span_are_two_spans(self, store: Store, b: Builder) -> None:
        trace, shared = new_trace_id(), new_span_id()
        client = b.span("front", trace_id=trace, span_id=shared, kind=SpanKind.CLIENT, at_ms=0)
        server = b.span("back", trace_id=trace, span_id=shared, kind=SpanKind.SERVER, at_ms=1)
        assert store.writer.write([client, server]).created == [client, server]
        store.refresh()
        assert [(s.span_id, s.kind) for s in store.reader.get_trace(trace)] == [
            (shared, SpanKind.CLIENT),
            (shared, SpanKind.SERVER),
        ]

    # ------------------------------------------------------------------------------------------ traces

    def test_a_trace_comes_back_whole_and_as_written_sorted_by_start(self, store: Store, b: Builder) -> None:
        trace = new_trace_id()
        root = b.span(
            "api",
            "GET /",
            trace_id=trace,
            at_ms=5,
            kind=SpanKind.SERVER,
            status=StatusCode.ERROR,
            message="boom",
            attributes={"n": 3, "f": 2.5, "ok": True, "s": "x", "arr": [1, 2], "kv": {"a": "b"}, "raw": b"\x00\x01"},
            resource={"region": "eu"},
            events=[Event(b.base_ns + 6 * NS_PER_MS, "exception", {"exception.type": "E"})],
            scope=Scope("lib", "2.0", {"lang": "py"}),
        )
        child = b.span("api", "child", trace_id=trace, parent=root.span_id, at_ms=1, attributes={"peer.service": "db"})
        # Sent through Zipkin: how it was sent comes back too.
        child.zipkin = ZipkinOrigin({"otel.library.name": "lib"}, ("peer.service",), {"serviceName": "db"}, ("{}",))
        self.write(store, [root, child])
        assert store.reader.get_trace(trace) == [child, root]
        assert store.reader.get_trace(new_trace_id()) == []

    def test_traces_by_id_leave_unknown_ids_empty(self, store: Store, b: Builder) -> None:
        one, two = b.span("t1"), b.span("t2")
        self.write(store, [one, two])
        unknown = new_trace_id()
        found = store.reader.traces([one.trace_id, two.trace_id, unknown], b.base_ns - MINUTE, b.base_ns + MINUTE)
        assert found == {one.trace_id: [one], two.trace_id: [two], unknown: []}

    def test_a_trace_is_read_up_to_max_spans_the_earliest_first(self, store: Store, b: Builder) -> None:
        big, small = new_trace_id(), new_trace_id()
        spans = [b.span("cap", trace_id=big, at_ms=i) for i in range(25)]
        # Two spans start together at the cut: the order of a trace (span id) decides which is kept.
        tie_first = b.span("cap", trace_id=big, span_id="0" * 16, at_ms=9)
        tie_last = b.span("cap", trace_id=big, span_id="f" * 16, at_ms=9)
        later = [b.span("cap", trace_id=small, at_ms=100 + i) for i in range(3)]
        written = [*spans, tie_first, tie_last, *later]
        random.shuffle(written)
        self.write(store, written)
        ordered = sorted([*spans, tie_first, tie_last], key=lambda s: (s.start_ns, s.span_id))

        assert store.reader.get_trace(big, max_spans=10) == ordered[:10]
        assert ordered[9] == tie_first  # and not tie_last, nor the other span at 9 ms
        assert store.reader.get_trace(big, max_spans=27) == ordered
        assert store.reader.get_trace(big, max_spans=1_000) == ordered
        assert store.reader.get_trace(big, b.base_ns - MINUTE, b.base_ns + MINUTE, max_spans=3) == ordered[:3]
        # The small trace's spans come after the big one's first pages: the big one leaves the query.
        found = store.reader.traces([big, small], b.base_ns - MINUTE, b.base_ns + MINUTE, max_spans=10)
        assert found == {big: ordered[:10], small: later}
        query = TraceQuery(b.base_ns - MINUTE, b.base_ns + MINUTE, [FieldEquals("service", b.service("cap"))], 5)
        assert store.reader.find_traces(query, max_spans=4) == [later, ordered[:4]]
        assert store.reader.find_traces(query) == [later, ordered]

    def test_a_trace_extent_spans_its_first_start_to_its_last_end(self, store: Store, b: Builder) -> None:
        trace = new_trace_id()
        spans = [
            b.span("extent", trace_id=trace, at_ms=0, duration_ms=50),
            b.span("extent", trace_id=trace, at_ms=10, duration_ms=500),  # ends last
            b.span("extent", trace_id=trace, at_ms=40, duration_ms=5),  # starts last
        ]
        self.write(store, spans)
        extent = store.reader.trace_extent(trace)
        assert extent is not None
        first, end = extent
        # Stores may bound the last end from above (Elasticsearch: last start + longest duration), and
        # aggregate in doubles (a few hundred nanoseconds at today's times).
        assert abs(first - spans[0].start_ns) < 1_000
        assert spans[1].end_ns - 1_000 <= end <= spans[2].start_ns + 500 * 1_000_000 + 1_000
        assert store.reader.trace_extent(new_trace_id()) is None

    # ------------------------------------------------------------------------------------------ search

    def test_search_finds_whole_traces_newest_first_within_the_limit(self, store: Store, b: Builder) -> None:
        spans = [b.span("order", "step", at_ms=i * 100) for i in range(5)]
        extra = [b.span("other", trace_id=s.trace_id, at_ms=i * 100 + 1) for i, s in enumerate(spans)]
        self.write(store, spans + extra)
        service = FieldEquals("service", b.service("order"))
        newest_first = [s.trace_id for s in reversed(spans)]
        assert self.find(store, b, service) == newest_first
        assert self.find(store, b, service, limit=2) == newest_first[:2]
        query = TraceQuery(b.base_ns - MINUTE, b.base_ns + MINUTE, [service], 1)
        (trace,) = store.reader.find_traces(query)
        assert {s.service_name for s in trace} == {b.service("order"), b.service("other")}

    def test_search_respects_the_time_window(self, store: Store, b: Builder) -> None:
        early, late = b.span("win", at_ms=0), b.span("win", at_ms=20 * 60_000)
        self.write(store, [early, late])
        query = TraceQuery(b.base_ns - MINUTE, b.base_ns + MINUTE, [FieldEquals("service", b.service("win"))], 10)
        assert [t[0].trace_id for t in store.reader.find_traces(query)] == [early.trace_id]

    def test_every_condition_must_hold_on_the_same_span(self, store: Store, b: Builder) -> None:
        trace = new_trace_id()
        one = b.span("same", "a", trace_id=trace, attributes={"x": "1"})
        two = b.span("same", "b", trace_id=trace, attributes={"y": "2"}, at_ms=1)
        both = b.span("same", "c", attributes={"x": "1", "y": "2"})
        self.write(store, [one, two, both])
        conditions = (FieldEquals("service", b.service("same")), tag_equals("x", "1"), tag_equals("y", "2"))
        assert self.find(store, b, *conditions) == [both.trace_id]

    def test_fields_of_the_span(self, store: Store, b: Builder) -> None:
        parent = new_span_id()
        ids = self.one_each(
            store,
            b,
            [
                b.span("f", "GET /cart", kind=SpanKind.SERVER, status=StatusCode.ERROR, message="upstream failed"),
                b.span("f", "SELECT", kind=SpanKind.CLIENT, status=StatusCode.OK, parent=parent, duration_ms=30),
                b.span("f", "tick", duration_ms=5),
            ],
        )
        service = FieldEquals("service", b.service("f"))

        def found(*conditions: Condition) -> set[str]:
            return set(self.find(store, b, service, *conditions))

        assert found(FieldEquals("name", "GET /cart")) == {ids["GET /cart"]}
        assert found(FieldEquals("status", "error")) == {ids["GET /cart"]}
        assert found(FieldEquals("kind", "client")) == {ids["SELECT"]}
        assert found(FieldEquals("statusMessage", "upstream failed")) == {ids["GET /cart"]}
        assert found(FieldEquals("span:parentID", parent)) == {ids["SELECT"]}
        assert found(FieldEquals("trace:id", ids["tick"])) == {ids["tick"]}
        assert found(FieldEquals("duration", str(5 * NS_PER_MS))) == {ids["tick"]}
        assert found(FieldRange("duration", (("gte", 5 * NS_PER_MS), ("lt", 30 * NS_PER_MS)))) == {ids["tick"]}
        assert found(FieldRange("duration", (("gt", 5 * NS_PER_MS),))) == {ids["SELECT"]}
        assert found(FieldMatches("name", "GET .*")) == {ids["GET /cart"]}
        assert found(FieldMatches("name", "GET")) == set()  # anchored
        assert found(Not(FieldEquals("status", "error"))) == {ids["SELECT"], ids["tick"]}
        assert found(Nothing()) == set()

    def test_service_and_span_names_can_match_ignoring_case(self, store: Store, b: Builder) -> None:
        span = b.span("MixedCase", "Get /Cart")
        self.write(store, [span])
        upper = b.service("MixedCase").upper()
        assert self.find(store, b, FieldEquals("service", upper, ignore_case=True)) == [span.trace_id]
        assert self.find(store, b, FieldEquals("service", upper)) == []
        named = FieldEquals("name", "get /cart", ignore_case=True)
        assert self.find(store, b, FieldEquals("service", b.service("MixedCase")), named) == [span.trace_id]
        assert store.reader.operations(upper, ignore_case=True) == [("Get /Cart", "internal")]
        assert store.reader.operations(upper) == []

    def test_attribute_text_can_match_ignoring_case(self, store: Store, b: Builder) -> None:
        span = b.span("peer", attributes={"peer.service": "Cart-Service"})
        self.write(store, [span])
        service = FieldEquals("service", b.service("peer"))
        folded = AttrEquals(("span.peer.service",), text="cart-SERVICE", ignore_case=True)
        assert self.find(store, b, service, folded) == [span.trace_id]
        assert self.find(store, b, service, AttrEquals(("span.peer.service",), text="cart-SERVICE")) == []

    def test_attribute_values_match_whatever_their_type(self, store: Store, b: Builder) -> None:
        ids = self.one_each(
            store,
            b,
            [
                b.span("t", "int", attributes={"code": 500}),
                b.span("t", "string", attributes={"code": "500"}),
                b.span("t", "float", attributes={"code": 500.0}),
                b.span("t", "bool", attributes={"flag": True}),
                b.span("t", "array", attributes={"tags": ["a", "b"]}),
                b.span("t", "map", attributes={"user": {"id": "u7"}}),
                b.span("t", "resource", resource={"code": 500}),
                b.span("t", "event", events=[Event(b.base_ns, "log", {"code": 500})]),
            ],
        )
        service = FieldEquals("service", b.service("t"))

        def found(*conditions: Condition) -> set[str]:
            return {n for n, t in ids.items() if t in self.find(store, b, service, *conditions)}

        assert found(tag_equals("code", "500")) == {"int", "string", "float", "resource", "event"}
        assert found(AttrEquals(("span.code",), text="500")) == {"int", "string"}  # 500.0 reads "500.0"
        assert found(AttrEquals(("span.code",), number=500.0)) == {"int", "float"}
        assert found(AttrEquals(("span.flag",), text="true")) == {"bool"}
        assert found(AttrEquals(("span.tags",), text="b")) == {"array"}
        assert found(AttrEquals(("span.user.id",), text="u7")) == {"map"}
        assert found(AttrExists(("resource.code",))) == {"resource"}
        assert found(AttrExists(("span.code", "event.code"))) == {"int", "string", "float", "event"}
        assert found(Not(AttrEquals(("span.code",), text="500")), FieldEquals("name", "float")) == {"float"}

    def test_numeric_comparisons(self, store: Store, b: Builder) -> None:
        values: dict[str, float | str] = {"neg": -5, "zero": 0, "small": 0.5, "ten": 10, "big": 2**53 + 2, "text": "12"}
        ids = self.one_each(store, b, [b.span("n", name, attributes={"v": v}) for name, v in values.items()])
        service = FieldEquals("service", b.service("n"))

        def found(op: str, number: float) -> set[str]:
            traces = self.find(store, b, service, AttrRange(("span.v",), op, number))
            return {n for n, t in ids.items() if t in traces}

        assert found(">", 0) == {"small", "ten", "big"}
        assert found(">=", 0) == {"zero", "small", "ten", "big"}
        assert found("<", 0.5) == {"neg", "zero"}
        assert found("<=", -5) == {"neg"}
        assert found(">", 10) == {"big"}  # "12" is text, never a number
        # Past 2**53 the bound is inclusive (doubles keep 2**53 + 2 and 2**53 + 1 alike): a superset.
        assert found(">", 2**53 + 1) == {"big"}

    def test_regular_expressions_match_whole_values(self, store: Store, b: Builder) -> None:
        ids = self.one_each(
            store,
            b,
            [b.span("r", "one", attributes={"route": "/api/v1"}), b.span("r", "two", attributes={"route": "/x"})],
        )
        service = FieldEquals("service", b.service("r"))
        assert self.find(store, b, service, AttrMatches(("span.route",), "/api/.*")) == [ids["one"]]
        assert self.find(store, b, service, AttrMatches(("span.route",), "/api")) == []

    def test_full_text(self, store: Store, b: Builder) -> None:
        ids = self.one_each(
            store,
            b,
            [
                b.span("text", "n1", attributes={"error.message": "Connection refused by peer"}),
                b.span("text", "n2", message="Read timeout after 5s"),
                b.span("text", "n3", events=[Event(b.base_ns, "cache miss")]),
                b.span("text", "GET /checkout/items"),
            ],
        )
        service = FieldEquals("service", b.service("text"))

        def found(text: str) -> set[str]:
            return {n for n, t in ids.items() if t in self.find(store, b, service, Text(text))}

        assert found("refused") == {"n1"}
        assert found("CONNECTION") == {"n1"}
        assert found('"connection refused"') == {"n1"}
        assert found('"refused connection"') == set()
        assert found("time*") == {"n2"}
        assert found("read timeout") == {"n2"}
        assert found("read -timeout") == set()
        assert found("miss | checkout") == {"n3", "GET /checkout/items"}

    def test_instrumentation_scope_trace_state_and_event_names(self, store: Store, b: Builder) -> None:
        stated = b.span("s", "stated", scope=Scope("lib", ""))
        stated.trace_state = "shop=tier:gold,congo=t61"
        ids = self.one_each(
            store,
            b,
            [
                b.span("s", "flask", scope=Scope("io.opentelemetry.flask", "0.1")),
                b.span("s", "events", events=[Event(b.base_ns, "exception"), Event(b.base_ns, "retry")]),
                stated,
            ],
        )
        service = FieldEquals("service", b.service("s"))
        assert self.find(store, b, service, FieldEquals("instrumentation:name", "io.opentelemetry.flask")) == [
            ids["flask"]
        ]
        assert self.find(store, b, service, FieldEquals("instrumentation:version", "0.1")) == [ids["flask"]]
        assert self.find(store, b, service, FieldEquals("event:name", "retry")) == [ids["events"]]
        assert self.find(store, b, service, FieldEquals("span:traceState", stated.trace_state)) == [ids["stated"]]
        assert self.find(store, b, service, FieldEquals("span:traceState", "shop=tier:gold")) == []

    def test_the_remote_service_a_span_names_is_listed_and_found(self, store: Store, b: Builder) -> None:
        """What Zipkin shows as the span's remoteEndpoint.serviceName (``query.remote_service``)."""
        tag_only = b.span("r", "zipkin tag only", kind=SpanKind.CLIENT, attributes={"peer.service": "ledger"})
        tag_only.zipkin = ZipkinOrigin()  # sent through Zipkin with no remoteEndpoint: it names nothing
        endpoint = b.span("r", "zipkin endpoint", kind=SpanKind.SERVER, attributes={"peer.service": "Web"})
        endpoint.zipkin = ZipkinOrigin(derived=("peer.service",), remote_endpoint={"serviceName": "Web"})
        ids = self.one_each(
            store,
            b,
            [
                b.span("r", "peer", kind=SpanKind.SERVER, attributes={"peer.service": "Payments"}),
                b.span("r", "address", kind=SpanKind.CLIENT, attributes={"server.address": "api", "db.name": "x"}),
                b.span("r", "internal", attributes={"server.address": "not-remote"}),
                tag_only,
                endpoint,
            ],
        )
        window = (b.base_ns - MINUTE, b.base_ns + MINUTE)
        assert store.reader.remote_service_names(b.service("r"), *window) == ["Payments", "Web", "api"]
        shouted = b.service("r").upper()
        assert store.reader.remote_service_names(shouted, *window, ignore_case=True) == ["Payments", "Web", "api"]
        assert store.reader.remote_service_names(shouted, *window) == []
        service = FieldEquals("service", b.service("r"))

        def found(name: str, ignore_case: bool = False) -> set[str]:
            return set(self.find(store, b, service, FieldEquals("zipkin:remoteServiceName", name, ignore_case)))

        assert found("Payments") == found("payments", ignore_case=True) == {ids["peer"]}
        assert found("payments") == set()
        assert found("api") == {ids["address"]}
        assert found("web", ignore_case=True) == {ids["zipkin endpoint"]}
        assert found("ledger") == found("not-remote") == set()

    def test_combinations(self, store: Store, b: Builder) -> None:
        ids = self.one_each(
            store,
            b,
            [
                b.span("c", "a", kind=SpanKind.SERVER, attributes={"x": "1"}),
                b.span("c", "b", kind=SpanKind.CLIENT, attributes={"x": "2"}),
                b.span("c", "c", kind=SpanKind.CLIENT, attributes={"x": "1"}),
            ],
        )
        service = FieldEquals("service", b.service("c"))
        x1 = AttrEquals(("span.x",), text="1")
        client = FieldEquals("kind", "client")

        def found(condition: Condition) -> set[str]:
            return {n for n, t in ids.items() if t in self.find(store, b, service, condition)}

        assert found(All((x1, client))) == {"c"}
        assert found(Any((x1, client))) == {"a", "b", "c"}
        assert found(All((Any((x1, client)), Not(All((x1, client)))))) == {"a", "b"}

    def test_candidates_page_newest_first(self, store: Store, b: Builder) -> None:
        spans = [b.span("page", at_ms=i * 1000) for i in range(5)]
        self.write(store, spans)
        conditions = [FieldEquals("service", b.service("page"))]
        first = store.reader.candidate_traces(conditions, b.base_ns - MINUTE, b.base_ns + MINUTE, 2)
        assert first == [(s.trace_id, s.start_ns) for s in reversed(spans[3:])]
        # Windows compare span starts in whole milliseconds: page on a millisecond earlier.
        rest = store.reader.candidate_traces(conditions, b.base_ns - MINUTE, first[-1][1] - NS_PER_MS, 10)
        assert [t for t, _ in rest] == [s.trace_id for s in reversed(spans[:3])]

    # ------------------------------------------------------------------------------------------ names

    def test_services_and_operations(self, store: Store, b: Builder) -> None:
        self.write(
            store,
            [
                b.span("ops", "GET /", kind=SpanKind.SERVER),
                b.span("ops", "GET /", kind=SpanKind.CLIENT),
                b.span("ops", "work"),
                b.span("ops2", "x"),
            ],
        )
        assert {b.service("ops"), b.service("ops2")} <= set(store.reader.services())
        assert store.reader.services() == sorted(store.reader.services())
        assert store.reader.operations(b.service("ops")) == [
            ("GET /", "client"),
            ("GET /", "server"),
            ("work", "internal"),
        ]
        assert store.reader.operations(b.service("ops"), "server") == [("GET /", "server")]

    def test_autocomplete_names_and_values(self, store: Store, b: Builder) -> None:
        spans = [b.span("ac", attributes={"http.method": "GET", "code": 200}) for _ in range(3)]
        spans += [b.span("ac", "POST /", attributes={"http.method": "POST", "code": "404"}, resource={"zone": "a"})]
        spans += [b.span("ac", "root", kind=SpanKind.SERVER, status=StatusCode.ERROR, message="bad")]
        self.write(store, spans)
        only = [FieldEquals("service", b.service("ac"))]
        window = (b.base_ns - MINUTE, b.base_ns + MINUTE)
        reader = store.reader
        assert reader.tag_names("span", *window, 10, only) == ["code", "http.method"]
        assert reader.tag_names("resource", *window, 10, only) == ["service.name", "zone"]
        assert reader.attribute_values("span", "http.method", *window, 10, only) == ["GET", "POST"]
        assert reader.attribute_values("span", "code", *window, 1, only) == ["200"]
        assert reader.numeric_attribute_values("span", "code", ["200", "404"], *window, only) == {"200"}
        assert reader.intrinsic_values("name", *window, 10, only) == ["op", "POST /", "root"]
        assert reader.intrinsic_values("status", *window, 10, only) == ["unset", "error"]
        assert reader.intrinsic_values("statusMessage", *window, 10, only) == ["bad"]
        assert reader.intrinsic_values("rootName", *window, 10, only) == ["op", "POST /", "root"]
        assert reader.intrinsic_values("instrumentation:name", *window, 10, only) == ["conformance"]
        assert reader.intrinsic_values("traceDuration", *window, 10, only) is None

    # ------------------------------------------------------------------------------------------ metrics over spans

    def test_span_aggregation_counts_per_step_and_group(self, store: Store, b: Builder) -> None:
        start = b.base_ns - b.base_ns % MINUTE
        durations = {"a": [1, 2, 3, 4], "b": [10]}
        spans = [
            b.span("agg", name, at_ns=start + i * MINUTE, duration_ms=d)
            for name, ds in durations.items()
            for i, d in enumerate(ds)
        ]
        self.write(store, spans)
        only = (FieldEquals("service", b.service("agg")),)
        by_name = (GroupBy("name", field="name"),)

        def run(function: str, quantiles: tuple[float, ...] = ()) -> dict[str, list[SeriesBucket]]:
            request = SpanAggregation(only, start, start + 4 * MINUTE, MINUTE, function, quantiles, by_name)
            return {dict(s.labels)["name"]: s.buckets for s in store.reader.aggregate_spans(request)}

        # Every step of [start, end] is answered, the one starting at ``end`` included (Tempo's too).
        counted = run("count")
        assert {n: [b.count for b in buckets] for n, buckets in counted.items()} == {
            "a": [1, 1, 1, 1, 0],
            "b": [1, 0, 0, 0, 0],
        }
        assert [bucket.time_ms for bucket in counted["a"]] == [(start + i * MINUTE) // NS_PER_MS for i in range(5)]
        summed = run("sum")
        assert [bucket.value for bucket in summed["a"]] == [d * NS_PER_MS for d in durations["a"]] + [None]
        maxed = run("max")
        assert maxed["b"][0].value == 10 * NS_PER_MS
        histogram = run("histogram")
        assert sum(sum(bucket.histogram.values()) for bucket in histogram["a"]) == 4
        assert histogram["b"][0].histogram == {"0.016777216": 1}  # 10 ms is in (2^23, 2^24] ns

    def test_span_aggregation_quantiles_are_close(self, store: Store, b: Builder) -> None:
        start = b.base_ns - b.base_ns % MINUTE
        spans = [b.span("q", at_ns=start + (10 + i) * NS_PER_MS, duration_ms=i + 1) for i in range(100)]
        self.write(store, spans)
        end = start + MINUTE - NS_PER_MS  # one step
        request = SpanAggregation(
            (FieldEquals("service", b.service("q")),), start, end, MINUTE, "quantiles", (0.5, 0.9)
        )
        (series,) = store.reader.aggregate_spans(request)
        (bucket,) = series.buckets
        assert series.labels == ()
        assert bucket.count == 100
        assert bucket.quantiles[0.5] == pytest.approx(50.5 * NS_PER_MS, rel=0.05)
        assert bucket.quantiles[0.9] == pytest.approx(90.1 * NS_PER_MS, rel=0.05)

    def test_span_aggregation_by_attribute(self, store: Store, b: Builder) -> None:
        start = b.base_ns - b.base_ns % MINUTE
        at = start + NS_PER_MS
        routes = ["/a", "/a", "/b"]
        self.write(store, [b.span("by", at_ns=at, attributes={"route": r}) for r in routes] + [b.span("by", at_ns=at)])
        group = (GroupBy("span.route", attribute="span.route"),)
        request = SpanAggregation(
            (FieldEquals("service", b.service("by")),), start, start + MINUTE, MINUTE, "count", (), group
        )
        counts = {s.labels: s.buckets[0].count for s in store.reader.aggregate_spans(request)}
        assert counts == {(("span.route", "/a"),): 2, (("span.route", "/b"),): 1}

    # ------------------------------------------------------------------------------------------ aggregates

    def write_aggregates(self, store: Store, b: Builder, process: str = "p1") -> tuple[str, str, str]:
        """A flush of one process (named per test: records are named by process and flush number)."""
        process = b.service(process)
        web, db, api = b.service("web"), b.service("db"), b.service("api")
        minute = b.base_ns - b.base_ns % MINUTE
        aggregator = Aggregator(100)
        aggregator.add_calls(
            [
                Call(web, api, "", False, 80 * NS_PER_MS, 90 * NS_PER_MS, minute + 1),
                Call(web, api, "", True, 20 * NS_PER_MS, 25 * NS_PER_MS, minute + MINUTE + 1),
                Call(api, db, "database", False, 5 * NS_PER_MS, -1, minute + 2),
            ]
        )
        aggregator.add_spans(
            [
                b.span("web", "GET /", kind=SpanKind.SERVER, at_ns=minute + NS_PER_MS),
                b.span(
                    "web",
                    "GET /",
                    kind=SpanKind.SERVER,
                    status=StatusCode.ERROR,
                    at_ns=minute + 61 * NS_PER_S,
                ),
            ]
        )
        snapshot = aggregator.drain()
        store.aggregate_writer.write(snapshot, process)
        store.aggregate_writer.write(snapshot, process)  # a retried flush: counted once
        store.refresh()
        return web, api, db

    def test_dependencies_add_up_every_process(self, store: Store, b: Builder) -> None:
        web, api, db = self.write_aggregates(store, b, "p1")
        self.write_aggregates(store, b, "p2")
        window = (b.base_ns - 5 * MINUTE, b.base_ns + 5 * MINUTE)
        links = [
            link
            for link in store.aggregates.dependencies(*window)
            if web in (link.parent, link.child) or db == link.child
        ]
        assert [(link.parent, link.child, link.call_count, link.error_count) for link in links] == [
            (api, db, 2, 0),
            (web, api, 4, 2),
        ]
        assert [(link.parent, link.child) for link in store.aggregates.dependencies(*window, service=db)] == [(api, db)]
        assert store.aggregates.dependencies(*window, service=db.upper()) == []

    def test_span_metrics_per_step(self, store: Store, b: Builder) -> None:
        web, _, _ = self.write_aggregates(store, b)
        minute = b.base_ns - b.base_ns % MINUTE
        series = store.aggregates.span_metrics(minute, minute + 2 * MINUTE, MINUTE, {"service": web}, ("span_kind",))
        assert [(s.labels, [(p.calls, p.errors) for p in s.points]) for s in series] == [
            ({"span_kind": "SPAN_KIND_SERVER"}, [(1, 0), (1, 1)])
        ]
        errors = store.aggregates.span_metrics(
            minute, minute + 2 * MINUTE, 2 * MINUTE, {"service": web, "status_code": "error"}
        )
        assert [[(p.calls, p.errors) for p in s.points] for s in errors] == [[(1, 1)]]
        calls = store.aggregates.calls_per_step(minute, minute + 2 * MINUTE, MINUTE, {"service": web}, ["status_code"])
        step_ms = [(minute + i * MINUTE) // NS_PER_MS for i in range(2)]
        assert sorted(calls) == [(("error",), [(step_ms[1], 1)]), (("unset",), [(step_ms[0], 1)])]

    def test_service_edges(self, store: Store, b: Builder) -> None:
        web, api, _ = self.write_aggregates(store, b)
        edges = {
            (e.client, e.server): e
            for e in store.aggregates.service_edges(b.base_ns - 5 * MINUTE, b.base_ns + 5 * MINUTE)
        }
        edge = edges[(web, api)]
        assert (edge.calls, edge.errors, edge.connection_type) == (2, 1, "")
        assert edge.latency_sum_s == pytest.approx(0.1)
        assert sum(edge.bucket_counts) == 2

    def test_service_latency_rollups_add_up_every_process_per_step(self, store: Store, b: Builder) -> None:
        minute = b.base_ns - b.base_ns % MINUTE
        web, api = b.service("web"), b.service("api")
        spans = [
            b.span("web", at_ns=minute + NS_PER_MS, duration_ms=10),
            b.span("web", at_ns=minute + 2 * NS_PER_MS, duration_ms=40),
            b.span("web", at_ns=minute + MINUTE + 1, duration_ms=160),
            b.span("api", at_ns=minute + 3, duration_ms=5),
        ]
        for process in ("p1", "p2"):
            rollup = ServiceLatency()
            rollup.add(spans, now_ns=0)
            store.aggregate_writer.write(Snapshot(latency=rollup.drain(0, everything=True), seq=1), process)
        store.refresh()
        window = (minute, minute + 2 * MINUTE)
        assert store.rollups.service_latency_first(*window) == minute
        [one] = store.rollups.service_latency(*window, MINUTE, web, by_service=False)
        assert one.service is None
        assert [(s.time_ns, s.calls, sum(s.buckets.values())) for s in one.steps] == [
            (minute, 4, 4),
            (minute + MINUTE, 2, 2),
        ]
        mine = [s for s in store.rollups.service_latency(*window, 2 * MINUTE, None, True) if s.service in (web, api)]
        assert [(s.service, [step.calls for step in s.steps]) for s in mine] == [(api, [2]), (web, [6])]
        # [start, end): the minute at the end is left out.
        [first] = store.rollups.service_latency(minute, minute + MINUTE, MINUTE, web, by_service=False)
        assert [s.calls for s in first.steps] == [4]
        assert store.rollups.service_latency_first(minute + 2 * MINUTE, minute + 3 * MINUTE) is None

    def test_presence_of_spans_in_a_range(self, store: Store, b: Builder) -> None:
        # Any span counts, so a moment no other test writes at; Elasticsearch keeps milliseconds.
        at = b.base_ns - b.base_ns % NS_PER_MS + 7 * MINUTE + 321 * NS_PER_MS
        self.write(store, [b.span("presence", at_ns=at)])
        assert store.presence.has_spans(at, at + NS_PER_MS)
        assert store.presence.has_spans(at - MINUTE, at + NS_PER_MS)
        assert not store.presence.has_spans(at + NS_PER_MS, at + 5 * NS_PER_MS)
        assert not store.presence.has_spans(at - 5 * NS_PER_MS, at)
        assert not store.presence.has_spans(at, at)

    # ------------------------------------------------------------------------------------------ service-graph lookups

    def test_lookups_of_the_service_graph(self, store: Store, b: Builder) -> None:
        trace, shared, lone = new_trace_id(), new_span_id(), new_span_id()
        client = b.span("caller", trace_id=trace, span_id=shared, kind=SpanKind.CLIENT)
        server = b.span("callee", trace_id=trace, span_id=shared, kind=SpanKind.SERVER, parent="", duration_ms=7)
        child = b.span("callee", trace_id=trace, parent=shared, at_ms=1)
        unanswered = b.span("caller", trace_id=trace, span_id=lone, kind=SpanKind.CLIENT, at_ms=2)
        self.write(store, [client, server, child, unanswered])
        refs = [
            SpanRef(trace, shared, b.service("caller"), client.start_ns),
            SpanRef(trace, lone, b.service("caller"), unanswered.start_ns),
        ]
        parents = store.lookup.parents(refs)
        assert set(parents) == {(trace, shared), (trace, lone)}
        assert (parents[(trace, shared)].service, parents[(trace, shared)].kind) == (
            b.service("callee"),
            SpanKind.SERVER,
        )
        assert store.lookup.served(refs) == {(trace, shared)}
