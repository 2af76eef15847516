"""A fixed set of small traces and the TraceQL results expected on them, derived by hand.

``traces(base_ns)`` builds the 16 traces (shift ``base_ns`` to "now" to ingest them into Elasticsearch);
``CONFORMANCE`` lists (query, trace ids that must match) and ``CONFORMANCE_SPANS`` (query, trace id ->
span ids of the matching spans) for the queries whose right-hand-side semantics need pinning.

The traces (service "name" kind status start-end in ms from base, parent):

SHOP a1:     s1 frontend "GET /checkout" server 0-100; s2 checkout "checkout.process" internal ok 10-90 <s1;
             s3 payments "POST /charge" client 20-60 <s2; s4 postgres "SELECT orders" client 30-40 <s3
CART b2:     s1 frontend "GET /cart" server error("upstream failed") 0-250;
             s2 cart "cart.load" internal error("timeout") 5-240 <s1, event exception at 200;
             s3 redis "GET cart:42" client 10-230 <s2; s4 cart "cache.get" client 6-8 <s2
LEGACY c3:   s1 legacy "GET /legacy" server 0-30 (status_code is the STRING "500"); s2 "render" 5-25 <s1
GATEWAY d4:  s1 gateway "POST /api" server error 0-50 (status_code is the FLOAT 500.0); s2 "auth" ok 1-4 <s1
MSG e5:      s1 orders "publish order" producer 0-5; s2 orders-worker "process order" consumer 100-400 <s1
             (link to SHOP s1); s3 orders-worker "save order" client 150-300 <s2
ORPHAN f6:   s1 inventory "reserve" server 10-60 <(absent); s2 "lookup" 20-30 <s1;
             s3 "early orphan" 5-8 <(another absent) -- the root is s3, the earliest parentless-in-trace span
FANOUT 07:   s1 search "GET /search" server 0-80; s2..s5 "shard 1".."shard 4" client <s1, 10/20/30/40 ms long,
             "shard 3" is error
FEATURE 18:  s1 frontend "GET /feature" server 0-20 (bool true, string array); s2 "flag.eval" 2-3 <s1 (bool
             false, int array)
USERS 29:    s1 api "GET /users" server 0-15 (span region); s2 api "db query" client 2-10 <s1 (resource region)
MOBILE 3a:   s1 mobile "app start" server 0-1000, events "cold start"@100, "exception"@900
BATCH 4b:    s1 batch "run job" server error 0-500; s2 "step 1" error 10-100 <s1; s3 "step 2" error 100-200 <s1;
             s4 notifier "send mail" client error 200-300 <s1; s5 notifier "render mail" ok 210-220 <s4
CRON 5c:     s1 cron "tick" unspecified ok 0-10; s2 "tick work" internal ok 0-30 <s1
LEDGER 6d:   s1 ledger 'say "hi"' server 0-7, odd attribute names and values
RECURSE 7e:  s1..s3 recursive "recurse" 0-40, 5-35, 10-30 (a chain); s4 "base case" 15-20 <s3
UPLOAD 8f:   s1 uploader "upload" client 0-2500, link to CART s1
HEALTH 90:   s1 health "healthcheck" internal 0-1
"""

from __future__ import annotations

from collections.abc import Mapping

from tracesearch.model import Attributes, AttrValue, Event, Link, Resource, Scope, Span, SpanKind, StatusCode

SHOP, CART, LEGACY, GATEWAY = "a1" * 16, "b2" * 16, "c3" * 16, "d4" * 16
MSG, ORPHAN, FANOUT, FEATURE = "e5" * 16, "f6" * 16, "07" * 16, "18" * 16
USERS, MOBILE, BATCH, CRON = "29" * 16, "3a" * 16, "4b" * 16, "5c" * 16
LEDGER, RECURSE, UPLOAD, HEALTH = "6d" * 16, "7e" * 16, "8f" * 16, "90" * 16
ALL = frozenset({SHOP, CART, LEGACY, GATEWAY, MSG, ORPHAN, FANOUT, FEATURE})
ALL |= frozenset({USERS, MOBILE, BATCH, CRON, LEDGER, RECURSE, UPLOAD, HEALTH})
NONE: frozenset[str] = frozenset()

MS = 1_000_000
SERVER, CLIENT, INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL
PRODUCER, CONSUMER, UNSPECIFIED = SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.UNSPECIFIED
OK, ERROR = StatusCode.OK, StatusCode.ERROR

RESOURCE_ATTRIBUTES: dict[str, Attributes] = {
    "frontend": {"deployment.environment": "production", "cloud.region": "us-east-1"},
    "checkout": {"deployment.environment": "production", "cloud.region": "us-west-1"},
    "payments": {"deployment.environment": "staging", "service.version": "1.2.0"},
    "cart": {"deployment.environment": "production", "cloud.region": "us-east-1"},
    "gateway": {"deployment.environment": "staging", "cloud.region": "us-west-1"},
    "api": {"region": "res-region", "deployment.environment": "production"},
}
FLASK = Scope("io.opentelemetry.flask", "0.45b0", {"lang": "python"})
SQLALCHEMY = Scope("sqlalchemy", "2.0")


def sid(trace_id: str, k: int) -> str:
    """Span id number k of a trace: the trace's two-char prefix then k in hex (``a100000000000003``)."""
    return trace_id[:2] + f"{k:014x}"


def traces(base_ns: int = 1_700_000_000_000_000_000) -> list[list[Span]]:
    """The 16 traces, each a list of spans, starting at ``base_ns``."""
    builder = _Builder(base_ns)
    return [build(builder) for build in _TRACES]


class _Builder:
    def __init__(self, base_ns: int) -> None:
        self.base_ns = base_ns
        self.resources: dict[tuple[str, str], Resource] = {}

    def resource(self, trace_id: str, service: str) -> Resource:
        key = (trace_id, service)
        if key not in self.resources:
            attributes: Attributes = {"service.name": service, **RESOURCE_ATTRIBUTES.get(service, {})}
            self.resources[key] = Resource(attributes, service)
        return self.resources[key]

    def span(
        self,
        trace_id: str,
        k: int,
        service: str,
        name: str,
        ms: tuple[float, float],
        parent: int | str | None = None,
        kind: SpanKind = INTERNAL,
        status: StatusCode = StatusCode.UNSET,
        message: str = "",
        attributes: Mapping[str, AttrValue] | None = None,
        events: list[Event] | None = None,
        links: list[Link] | None = None,
        scope: Scope | None = None,
    ) -> Span:
        start = self.base_ns + int(ms[0] * MS)
        parent_id = sid(trace_id, parent) if isinstance(parent, int) else (parent or "")
        return Span(
            trace_id=trace_id,
            span_id=sid(trace_id, k),
            name=name,
            start_ns=start,
            end_ns=self.base_ns + int(ms[1] * MS),
            resource=self.resource(trace_id, service),
            scope=scope or Scope("tracesearch.fixture", "1.0"),
            parent_span_id=parent_id,
            kind=kind,
            status_code=status,
            status_message=message,
            attributes=dict(attributes or {}),
            events=events or [],
            links=links or [],
        )

    def at(self, ms: float) -> int:
        return self.base_ns + int(ms * MS)


def _shop(b: _Builder) -> list[Span]:
    t = SHOP
    return [
        b.span(t, 1, "frontend", "GET /checkout", (0, 100), kind=SERVER, attributes={
            "http.request.method": "GET", "http.response.status_code": 200, "http.route": "/checkout"}),
        b.span(t, 2, "checkout", "checkout.process", (10, 90), 1, status=OK, attributes={"items": 3}),
        b.span(t, 3, "payments", "POST /charge", (20, 60), 2, kind=CLIENT, attributes={
            "http.request.method": "POST", "http.response.status_code": 201, "amount": 12.5}),
        b.span(t, 4, "postgres", "SELECT orders", (30, 40), 3, kind=CLIENT, attributes={
            "db.system": "postgresql", "db.statement": "SELECT * FROM orders"}),
    ]  # fmt: skip


def _cart(b: _Builder) -> list[Span]:
    t = CART
    exception = Event(b.at(200), "exception", {"exception.type": "TimeoutError", "exception.message": "read timed out"})
    return [
        b.span(t, 1, "frontend", "GET /cart", (0, 250), kind=SERVER, status=ERROR, message="upstream failed",
               attributes={"http.request.method": "GET", "http.response.status_code": 500}),
        b.span(t, 2, "cart", "cart.load", (5, 240), 1, status=ERROR, message="timeout", events=[exception]),
        b.span(t, 3, "redis", "GET cart:42", (10, 230), 2, kind=CLIENT, attributes={"db.system": "redis"}),
        b.span(t, 4, "cart", "cache.get", (6, 8), 2, kind=CLIENT, attributes={"cache.hit": False}),
    ]  # fmt: skip


def _legacy(b: _Builder) -> list[Span]:
    t = LEGACY
    return [
        b.span(t, 1, "legacy", "GET /legacy", (0, 30), kind=SERVER, attributes={
            "http.response.status_code": "500", "http.request.method": "GET"}),
        b.span(t, 2, "legacy", "render", (5, 25), 1, attributes={"retries": 0}),
    ]  # fmt: skip


def _gateway(b: _Builder) -> list[Span]:
    t = GATEWAY
    return [
        b.span(t, 1, "gateway", "POST /api", (0, 50), kind=SERVER, status=ERROR, attributes={
            "http.response.status_code": 500.0, "http.request.method": "POST"}),
        b.span(t, 2, "gateway", "auth", (1, 4), 1, status=OK),
    ]  # fmt: skip


def _messaging(b: _Builder) -> list[Span]:
    t = MSG
    link = Link(SHOP, sid(SHOP, 1), attributes={"opentracing.ref_type": "follows_from"})
    return [
        b.span(t, 1, "orders", "publish order", (0, 5), kind=PRODUCER, attributes={"messaging.system": "kafka"}),
        b.span(t, 2, "orders-worker", "process order", (100, 400), 1, kind=CONSUMER,
               attributes={"messaging.system": "kafka"}, links=[link]),
        b.span(t, 3, "orders-worker", "save order", (150, 300), 2, kind=CLIENT, attributes={"db.system": "mysql"}),
    ]  # fmt: skip


def _orphans(b: _Builder) -> list[Span]:
    t = ORPHAN
    return [
        b.span(t, 1, "inventory", "reserve", (10, 60), "ffffffffffffffff", kind=SERVER),
        b.span(t, 2, "inventory", "lookup", (20, 30), 1),
        b.span(t, 3, "inventory", "early orphan", (5, 8), "eeeeeeeeeeeeeeee"),
    ]


def _fanout(b: _Builder) -> list[Span]:
    t = FANOUT
    root = b.span(t, 1, "search", "GET /search", (0, 80), kind=SERVER, attributes={"user.id": "u-7"})
    shards = [
        b.span(t, n + 1, "search", f"shard {n}", (5, 5 + 10 * n), 1, kind=CLIENT,
               status=ERROR if n == 3 else StatusCode.UNSET, attributes={"shard": n})
        for n in range(1, 5)
    ]  # fmt: skip
    return [root, *shards]


def _feature(b: _Builder) -> list[Span]:
    t = FEATURE
    return [
        b.span(t, 1, "frontend", "GET /feature", (0, 20), kind=SERVER, attributes={
            "feature.enabled": True, "tags": ["a", "b", "c"], "http.request.method": "GET"}),
        b.span(t, 2, "frontend", "flag.eval", (2, 3), 1, attributes={"feature.enabled": False, "scores": [1, 2, 3]}),
    ]  # fmt: skip


def _users(b: _Builder) -> list[Span]:
    t = USERS
    return [
        b.span(t, 1, "api", "GET /users", (0, 15), kind=SERVER, attributes={"region": "span-region"}, scope=FLASK),
        b.span(t, 2, "api", "db query", (2, 10), 1, kind=CLIENT, attributes={"db.system": "postgresql"},
               scope=SQLALCHEMY),
    ]  # fmt: skip


def _mobile(b: _Builder) -> list[Span]:
    events = [
        Event(b.at(100), "cold start", {"phase": "init"}),
        Event(b.at(900), "exception", {"exception.type": "NullPointerException", "exception.message": "npe"}),
    ]
    return [b.span(MOBILE, 1, "mobile", "app start", (0, 1000), kind=SERVER, events=events)]


def _batch(b: _Builder) -> list[Span]:
    t = BATCH
    return [
        b.span(t, 1, "batch", "run job", (0, 500), kind=SERVER, status=ERROR),
        b.span(t, 2, "batch", "step 1", (10, 100), 1, status=ERROR),
        b.span(t, 3, "batch", "step 2", (100, 200), 1, status=ERROR),
        b.span(t, 4, "notifier", "send mail", (200, 300), 1, kind=CLIENT, status=ERROR),
        b.span(t, 5, "notifier", "render mail", (210, 220), 4, status=OK),
    ]


def _cron(b: _Builder) -> list[Span]:
    return [
        b.span(CRON, 1, "cron", "tick", (0, 10), kind=UNSPECIFIED, status=OK),
        b.span(CRON, 2, "cron", "tick work", (0, 30), 1, status=OK),
    ]


def _ledger(b: _Builder) -> list[Span]:
    attributes: Attributes = {
        "balance": -5,
        "attr with space": "yes",
        "user.name": "bob",
        "path": "C:\\temp",
        "big": 9007199254740993,
    }
    return [b.span(LEDGER, 1, "ledger", 'say "hi"', (0, 7), kind=SERVER, attributes=attributes)]


def _recursive(b: _Builder) -> list[Span]:
    t = RECURSE
    return [
        b.span(t, 1, "recursive", "recurse", (0, 40), attributes={"depth": 0}),
        b.span(t, 2, "recursive", "recurse", (5, 35), 1, attributes={"depth": 1}),
        b.span(t, 3, "recursive", "recurse", (10, 30), 2, attributes={"depth": 2}),
        b.span(t, 4, "recursive", "base case", (15, 20), 3, attributes={"depth": 3}),
    ]


def _upload(b: _Builder) -> list[Span]:
    link = Link(CART, sid(CART, 1))
    attributes: Attributes = {"bytes": 1048576}
    return [b.span(UPLOAD, 1, "uploader", "upload", (0, 2500), kind=CLIENT, attributes=attributes, links=[link])]


def _health(b: _Builder) -> list[Span]:
    return [b.span(HEALTH, 1, "health", "healthcheck", (0, 1))]


_TRACES = (
    _shop, _cart, _legacy, _gateway, _messaging, _orphans, _fanout, _feature,
    _users, _mobile, _batch, _cron, _ledger, _recursive, _upload, _health,
)  # fmt: skip


def _ids(*trace_ids: str) -> frozenset[str]:
    return frozenset(trace_ids)


# Every expected set below was worked out from the trace descriptions above, not by running the evaluator.
CONFORMANCE: list[tuple[str, frozenset[str]]] = [
    # match all / constants
    ("{}", ALL),
    ("{ true }", ALL),
    ("{ false }", NONE),
    # name, regexes (fully anchored)
    ('{ name = "GET /checkout" }', _ids(SHOP)),
    ('{ span:name = "GET /checkout" }', _ids(SHOP)),
    ('{ name =~ "GET .*" }', _ids(SHOP, CART, LEGACY, FANOUT, FEATURE, USERS)),
    ('{ name =~ "GET" }', NONE),
    ('{ name !~ ".*e.*" }', _ids(CART, GATEWAY, ORPHAN, FANOUT, MOBILE, BATCH, CRON, LEDGER, UPLOAD)),
    # status, status message, kind
    ("{ status = error }", _ids(CART, GATEWAY, FANOUT, BATCH)),
    ("{ span:status = ok }", _ids(SHOP, GATEWAY, BATCH, CRON)),
    ("{ status != unset }", _ids(SHOP, CART, GATEWAY, FANOUT, BATCH, CRON)),
    ('{ statusMessage = "timeout" }', _ids(CART)),
    ('{ span:statusMessage =~ ".*failed" }', _ids(CART)),
    ("{ kind = producer }", _ids(MSG)),
    ("{ span:kind = consumer }", _ids(MSG)),
    ("{ kind = unspecified }", _ids(CRON)),
    ("{ kind = client && status = error }", _ids(FANOUT, BATCH)),
    # durations
    ("{ duration > 1s }", _ids(UPLOAD)),
    ("{ duration >= 1s }", _ids(MOBILE, UPLOAD)),
    ("{ span:duration < 2ms }", _ids(FEATURE, HEALTH)),
    ("{ duration >= 0.5s && duration <= 1000ms }", _ids(BATCH, MOBILE)),
    ("{ duration > 1h }", NONE),
    ("{ traceDuration > 300ms }", _ids(MSG, MOBILE, BATCH, UPLOAD)),
    ("{ trace:duration < 20ms }", _ids(USERS, LEDGER, HEALTH)),
    # trace-level intrinsics
    ('{ rootName = "GET /cart" }', _ids(CART)),
    ('{ trace:rootName = "early orphan" }', _ids(ORPHAN)),
    ('{ rootServiceName = "frontend" }', _ids(SHOP, CART, FEATURE)),
    ('{ trace:rootService = "inventory" }', _ids(ORPHAN)),
    ('{ rootServiceName = "search" && span.shard >= 3 }', _ids(FANOUT)),
    (f'{{ trace:id = "{MSG}" }}', _ids(MSG)),
    # ids, parent, child count
    (f'{{ span:id = "{sid(FANOUT, 4)}" }}', _ids(FANOUT)),
    (f'{{ span:parentID = "{sid(SHOP, 3)}" }}', _ids(SHOP)),
    ("{ span:parentID = nil }", ALL - {ORPHAN}),
    ("{ span:childCount = 4 }", _ids(FANOUT)),
    ("{ span:childCount >= 2 }", _ids(CART, FANOUT, BATCH)),
    ('{ span:childCount = 0 && resource.service.name = "frontend" }', _ids(FEATURE)),
    # typed comparisons: int 500, string "500", float 500.0 under one key
    ("{ span.http.response.status_code = 500 }", _ids(CART, GATEWAY)),
    ('{ span.http.response.status_code = "500" }', _ids(LEGACY)),
    ("{ span.http.response.status_code = 500.0 }", _ids(CART, GATEWAY)),
    ("{ span.http.response.status_code >= 200 && span.http.response.status_code < 300 }", _ids(SHOP)),
    ('{ span.http.response.status_code >= "400" }', _ids(LEGACY)),
    ("{ span.http.response.status_code != 500 }", _ids(SHOP)),
    ("{ span.http.response.status_code = nil }", ALL),
    ("{ span.http.response.status_code != nil }", _ids(SHOP, CART, LEGACY, GATEWAY)),
    ("{ span.shard = \"1\" }", NONE),
    ("{ span.items = 3.0 }", _ids(SHOP)),
    ("{ span.amount > 12 && span.amount < 13 }", _ids(SHOP)),
    ("{ span.balance = -5 }", _ids(LEDGER)),
    ("{ -1 > span.balance }", _ids(LEDGER)),
    ("{ span.retries > -1 }", _ids(LEGACY)),
    ("{ span.big > 9007199254740992 }", _ids(LEDGER)),
    ("{ span.bytes > 1000000 }", _ids(UPLOAD)),
    ("{ span.missing = nil }", ALL),
    ('{ span.missing != "x" }', NONE),
    # booleans and arrays
    ("{ span.feature.enabled = true }", _ids(FEATURE)),
    ("{ span.feature.enabled }", _ids(FEATURE)),
    ("{ !span.feature.enabled }", _ids(FEATURE)),
    ("{ span.cache.hit = false }", _ids(CART)),
    ("{ span.cache.hit != true }", _ids(CART)),
    ('{ span.tags = "b" }', _ids(FEATURE)),
    ('{ span.tags != "z" }', _ids(FEATURE)),
    ('{ span.tags != "a" }', NONE),
    ('{ span.tags =~ "[a-c]" }', _ids(FEATURE)),
    ("{ span.scores > 2 }", _ids(FEATURE)),
    # resource, unscoped, scoped attributes
    ('{ .http.request.method = "POST" }', _ids(SHOP, GATEWAY)),
    ('{ resource.deployment.environment = "staging" }', _ids(SHOP, GATEWAY)),
    ('{ .deployment.environment = "staging" }', _ids(SHOP, GATEWAY)),
    ('{ resource.service.name = "payments" }', _ids(SHOP)),
    ('{ resource.service.version = nil && resource.service.name = "payments" }', NONE),
    ('{ resource.cloud.region = "us-east-1" && resource.cloud.region = "us-west-1" }', NONE),
    ('{ resource.cloud.region =~ "us-(east|west)-1" }', _ids(SHOP, CART, FEATURE, GATEWAY)),
    ('{ .region = "span-region" }', _ids(USERS)),
    ('{ .region = "res-region" }', _ids(USERS)),
    ('{ span.region = "res-region" }', NONE),
    ('{ resource.region = "res-region" }', _ids(USERS)),
    ('{ span.user.id = "u-7" }', _ids(FANOUT)),
    ('{ .messaging.system = "kafka" } > { kind = client }', _ids(MSG)),
    # events, links, instrumentation scope
    ('{ event.exception.type = "TimeoutError" }', _ids(CART)),
    ('{ event.exception.message =~ ".*timed out.*" }', _ids(CART)),
    ('{ event:name = "exception" }', _ids(CART, MOBILE)),
    ('{ event:name = "cold start" && event.phase = "init" }', _ids(MOBILE)),
    ("{ event:timeSinceStart > 500ms }", _ids(MOBILE)),
    ("{ event.exception.message = nil && status = error }", _ids(CART, GATEWAY, FANOUT, BATCH)),
    (f'{{ link:traceID = "{SHOP}" }}', _ids(MSG)),
    ('{ link.opentracing.ref_type = "follows_from" }', _ids(MSG)),
    ("{ link:spanID != nil }", _ids(MSG, UPLOAD)),
    ('{ instrumentation:name = "io.opentelemetry.flask" }', _ids(USERS)),
    ('{ instrumentation:version = "2.0" }', _ids(USERS)),
    ('{ instrumentation.lang = "python" }', _ids(USERS)),
    # quoting and escapes
    ('{ span."attr with space" = "yes" }', _ids(LEDGER)),
    ('{ span.user.name = "bob" }', _ids(LEDGER)),
    ('{ name = "say \\"hi\\"" }', _ids(LEDGER)),
    ('{ span.path = "C:\\\\temp" }', _ids(LEDGER)),
    ("{ span.path = `C:\\temp` }", _ids(LEDGER)),
    # && || ! and parentheses inside one filter; && and || share one precedence level (Tempo)
    ('{ (status = error || kind = producer) && resource.service.name != "batch" }',
     _ids(CART, GATEWAY, FANOUT, MSG, BATCH)),
    ('{ !(status = error) && kind = server && span.http.request.method = "GET" }', _ids(SHOP, LEGACY, FEATURE)),
    ("{ status = ok || status = error && kind = client }", _ids(FANOUT, BATCH)),
    # trace-level && || (same precedence, left to right)
    ('{ resource.deployment.environment = "production" } && { resource.deployment.environment = "staging" }',
     _ids(SHOP)),
    ('{ resource.cloud.region = "us-east-1" } || { resource.cloud.region = "us-west-1" }',
     _ids(SHOP, CART, FEATURE, GATEWAY)),
    ('{ name = "tick" } || { name = "auth" } && { kind = server }', _ids(GATEWAY)),
    ('{ name = "tick" } || ({ name = "auth" } && { kind = server })', _ids(CRON, GATEWAY)),
    # structural operators
    ('{ resource.service.name = "frontend" } >> { status = error }', _ids(CART)),
    ('{ name = "checkout.process" } > { kind = client }', _ids(SHOP)),
    ('{ name = "GET /checkout" } > { kind = client }', NONE),
    ('{ name = "GET /checkout" } >> { kind = client }', _ids(SHOP)),
    ("{ kind = client } < { kind = internal }", _ids(SHOP, CART)),
    ("{ span.db.system != nil } << { kind = server }", _ids(SHOP, CART, USERS)),
    ('{ name = "shard 1" } ~ { status = error }', _ids(FANOUT)),
    ("{ kind = client } ~ { kind = client }", _ids(CART, FANOUT)),
    ('{ name = "step 1" } ~ { resource.service.name = "notifier" }', _ids(BATCH)),
    ('{ name = "recurse" } > { name = "recurse" }', _ids(RECURSE)),
    ("{ status = error } >> { status = ok }", _ids(GATEWAY, BATCH)),
    ("{ kind = producer } > { kind = consumer } > { kind = client }", _ids(MSG)),
    # union structural
    ('{ name = "checkout.process" } &> { kind = client }', _ids(SHOP)),
    ('{ name = "GET /cart" } &>> { status = error }', _ids(CART)),
    ("{ kind = client } &< { kind = internal }", _ids(SHOP, CART)),
    ("{ span.db.system != nil } &<< { kind = server }", _ids(SHOP, CART, USERS)),
    ('{ name = "shard 1" } &~ { status = error }', _ids(FANOUT)),
    # negated structural
    ('{ } !< { resource.service.name = "frontend" }', _ids(FEATURE)),
    ("{ status = error } !< { status = error }", _ids(CART, GATEWAY, FANOUT, BATCH)),
    ('{ name = "recurse" } !> { name = "recurse" }', _ids(RECURSE)),
    ("{ status = error } !>> { status = error }", _ids(CART, GATEWAY, FANOUT, BATCH)),
    ('{ name = "base case" } !<< { name = "recurse" }', NONE),
    ("{ kind = client } !~ { kind = client }", _ids(SHOP, MSG, USERS, BATCH, UPLOAD)),
    # pipelines: aggregates
    ("{ status = error } | count() > 2", _ids(BATCH)),
    ("{ status = error } | count() = 2", _ids(CART)),
    ("{ } | count() > 4", _ids(FANOUT, BATCH)),
    ("count() >= 4", _ids(SHOP, CART, FANOUT, BATCH, RECURSE)),
    ('{ name =~ "shard.*" } | avg(duration) > 20ms', _ids(FANOUT)),
    ("{ } | avg(duration) = 20ms", _ids(CRON)),
    ("{ } | max(duration) >= 1s", _ids(MOBILE, UPLOAD)),
    ("{ } | min(duration) > 5ms", _ids(SHOP, LEGACY, FANOUT, USERS, MOBILE, BATCH, CRON, LEDGER, UPLOAD)),
    ("{ } | sum(span.shard) = 10", _ids(FANOUT)),
    ("{ } | sum(span.shard) > 10", NONE),
    ("{ span.depth >= 2 } | count() = 2", _ids(RECURSE)),
    ('{ name = "GET /search" } > { } | count() = 4', _ids(FANOUT)),
    ("{ kind = server } >> { kind = client } | count() >= 4", _ids(FANOUT)),
    ("({ status = error } | count() > 1) && { kind = client }", _ids(CART, BATCH)),
    # pipelines: by, coalesce, select, filters after |
    ("{ status = error } | by(resource.service.name) | count() > 1", _ids(BATCH)),
    ("{ } | by(resource.service.name) | count() = 1", _ids(SHOP, CART, MSG, MOBILE, LEDGER, UPLOAD, HEALTH)),
    ("{ } | by(resource.service.name) | coalesce() | count() > 4", _ids(FANOUT, BATCH)),
    ("{ span.http.request.method != nil } | select(span.http.route)", _ids(SHOP, CART, LEGACY, GATEWAY, FEATURE)),
    ("{ trace:duration > 1s } | select(resource.service.name)", _ids(UPLOAD)),
    ("{ kind = server } | { status = error }", _ids(CART, GATEWAY, BATCH)),
]  # fmt: skip


# (query, {trace id: span ids of the matching spans}) -- pins which side structural operators return.
CONFORMANCE_SPANS: list[tuple[str, dict[str, frozenset[str]]]] = [
    ('{ name = "checkout.process" } > { kind = client }', {SHOP: frozenset({sid(SHOP, 3)})}),
    ("{ kind = client } < { kind = internal }", {SHOP: frozenset({sid(SHOP, 2)}), CART: frozenset({sid(CART, 2)})}),
    ("{ span.db.system != nil } << { kind = server }",
     {SHOP: frozenset({sid(SHOP, 1)}), CART: frozenset({sid(CART, 1)}), USERS: frozenset({sid(USERS, 1)})}),
    ('{ name = "shard 1" } ~ { }', {FANOUT: frozenset({sid(FANOUT, 3), sid(FANOUT, 4), sid(FANOUT, 5)})}),
    ('{ name = "checkout.process" } &> { kind = client }', {SHOP: frozenset({sid(SHOP, 2), sid(SHOP, 3)})}),
    ("{ kind = client } &< { kind = internal }",
     {SHOP: frozenset({sid(SHOP, 2), sid(SHOP, 3)}), CART: frozenset({sid(CART, 2), sid(CART, 3), sid(CART, 4)})}),
    ('{ name = "GET /cart" } &>> { status = error }', {CART: frozenset({sid(CART, 1), sid(CART, 2)})}),
    ('{ name = "shard 1" } &~ { status = error }', {FANOUT: frozenset({sid(FANOUT, 2), sid(FANOUT, 4)})}),
    ("{ status = error } !< { status = error }", {
        CART: frozenset({sid(CART, 2)}), GATEWAY: frozenset({sid(GATEWAY, 1)}),
        FANOUT: frozenset({sid(FANOUT, 4)}), BATCH: frozenset({sid(BATCH, 2), sid(BATCH, 3), sid(BATCH, 4)})}),
    ('{ name = "recurse" } > { name = "recurse" }', {RECURSE: frozenset({sid(RECURSE, 2), sid(RECURSE, 3)})}),
    ('{ name = "recurse" } !> { name = "recurse" }', {RECURSE: frozenset({sid(RECURSE, 1)})}),
    ('{ name = "base case" } << { }', {RECURSE: frozenset({sid(RECURSE, 1), sid(RECURSE, 2), sid(RECURSE, 3)})}),
    ("{ kind = client } !~ { kind = client }", {
        SHOP: frozenset({sid(SHOP, 3), sid(SHOP, 4)}), MSG: frozenset({sid(MSG, 3)}),
        USERS: frozenset({sid(USERS, 2)}), BATCH: frozenset({sid(BATCH, 4)}), UPLOAD: frozenset({sid(UPLOAD, 1)})}),
    ('{ .region = "res-region" }', {USERS: frozenset({sid(USERS, 2)})}),
    ("{ !span.feature.enabled }", {FEATURE: frozenset({sid(FEATURE, 2)})}),
    ('{ resource.cloud.region = "us-east-1" } && { name = "cart.load" }',
     {CART: frozenset({sid(CART, 1), sid(CART, 2), sid(CART, 4)})}),
    ("{ status = error } | by(resource.service.name) | count() > 1",
     {BATCH: frozenset({sid(BATCH, 1), sid(BATCH, 2), sid(BATCH, 3)})}),
]  # fmt: skip
