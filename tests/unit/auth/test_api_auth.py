"""The before_request check: every route in the table, 401/403 in each surface's error format, the
OpenAPI document's security, and the settings' credentials redacted and passed to the clients."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from google.rpc import status_pb2

from tests.unit.test_ui import ui_app, ui_settings, write_lens
from tracesearch.api import auth
from tracesearch.api.openapi import document
from tracesearch.app import create_app
from tracesearch.auth.keys import KeyRecord, hash_key, new_key
from tracesearch.auth.store import add_key
from tracesearch.settings import Settings

FAST = {"n": 2**4, "r": 1, "p": 1}
KEYS = {"reader": {"read"}, "ingester": {"ingest"}, "admin": {"admin"}, "all": {"ingest", "read", "admin"}}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("auth") / "keys.yaml"
    made = {}
    for key_id, scopes in KEYS.items():
        made[key_id] = new_key(key_id)
        add_key(str(path), KeyRecord(key_id, hash_key(made[key_id], **FAST), frozenset(scopes), "team-a"))
    return path, made


def make_app(path: Path, **overrides: Any) -> Flask:
    from tests.unit import test_openapi

    app = create_app(Settings(auth_keys_file=str(path), install_templates=False, **overrides))
    app.extensions["tracesearch"].__dict__["_es"] = test_openapi.Recorder()
    return app


def js(response: Any) -> Any:
    return json.loads(response.data)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(key: str, user: str = "anyone") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def test_every_route_has_a_scope_with_the_ui_on_and_off(tmp_path: Path) -> None:
    assert auth.unlisted(create_app(Settings(install_templates=False))) == []
    assert auth.unlisted(ui_app(ui_settings(write_lens(tmp_path)))) == []


def test_a_route_missing_from_the_table_stops_the_start() -> None:
    app = create_app(Settings(install_templates=False))
    app.add_url_rule("/api/new", "new_view", lambda: "x")
    with pytest.raises(auth.UnlistedRoutes, match="/api/new"):
        auth.check_routes(app)


def test_put_endpoints_need_admin_and_ingest_needs_ingest() -> None:
    for endpoint in ("sampling.put_strategies", "alerts.put_rules"):
        assert auth.ROUTE_SCOPES[endpoint] == {"admin"}
    for endpoint in ("otlp.export_traces", "zipkin_ingest.post_spans"):
        assert auth.ROUTE_SCOPES[endpoint] == {"ingest"}


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda k: bearer(k), id="bearer"),
        pytest.param(lambda k: basic(k), id="basic-any-user"),
        pytest.param(lambda k: basic(k, user="reader"), id="basic-user-is-id"),
        pytest.param(lambda k: {"Authorization": f"bearer   {k}  "}, id="bearer-lowercase"),
    ],
)
def test_a_key_is_accepted_as_bearer_or_basic_password(keys: tuple[Path, dict[str, str]], header: Any) -> None:
    path, made = keys
    response = make_app(path).test_client().get("/api/services", headers=header(made["reader"]))
    assert response.status_code == 200, response.data


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic !!!", "Basic " + base64.b64encode(b"user-only").decode(), "Digest x"],
)
def test_credentials_that_are_not_a_key(authorization: str) -> None:
    assert auth.credentials(authorization) is None


def _challenges(response: Any) -> list[str]:
    return list(response.headers.getlist("WWW-Authenticate"))


# (method, path, body check) per surface for 401: each in its own error format.
def test_401_in_each_surfaces_error_format(keys: tuple[Path, dict[str, str]]) -> None:
    client = make_app(keys[0]).test_client()
    jaeger = client.get("/api/services")
    assert jaeger.status_code == 401 and js(jaeger)["errors"][0]["code"] == 401 and js(jaeger)["data"] is None
    assert _challenges(jaeger) == ['Bearer realm="tracesearch"', 'Basic realm="tracesearch", charset="UTF-8"']
    tempo = client.get("/api/search", headers=bearer("tsk_nobody_x"))
    assert tempo.status_code == 401 and js(tempo)["error"]["code"] == 401 and "message" in js(tempo)
    assert _challenges(tempo)[0] == 'Bearer realm="tracesearch", error="invalid_token"'
    zipkin = client.get("/api/v2/services")
    assert zipkin.status_code == 401 and js(zipkin) == {
        "error": {"code": 401, "message": js(zipkin)["error"]["message"], "field": "Authorization"}
    }
    otlp_json = client.post("/v1/traces", data=b"{}", content_type="application/json")
    assert otlp_json.status_code == 401 and js(otlp_json)["code"] == 16  # UNAUTHENTICATED
    otlp_proto = client.post("/v1/traces", data=b"", content_type="application/x-protobuf")
    status = status_pb2.Status.FromString(otlp_proto.data)
    assert otlp_proto.status_code == 401 and status.code == 16 and otlp_proto.mimetype == "application/x-protobuf"
    zipkin_ingest = client.post("/api/v2/spans", data=b"[]", content_type="application/json")
    assert zipkin_ingest.status_code == 401 and js(zipkin_ingest)["error"]["code"] == 401
    for response in (jaeger, tempo, zipkin, otlp_json, otlp_proto, zipkin_ingest):
        assert len(_challenges(response)) == 2


def test_403_when_the_scope_is_wrong(keys: tuple[Path, dict[str, str]]) -> None:
    path, made = keys
    client = make_app(path).test_client()
    ingest_reads = client.get("/api/search", headers=bearer(made["ingester"]))
    assert ingest_reads.status_code == 403 and js(ingest_reads)["error"]["code"] == 403
    assert "read" in js(ingest_reads)["message"] and made["ingester"] not in ingest_reads.get_data(as_text=True)
    assert _challenges(ingest_reads) == ['Bearer realm="tracesearch", error="insufficient_scope", scope="read"']
    reader_ingests = client.post(
        "/v1/traces", data=b"", content_type="application/x-protobuf", headers=basic(made["reader"])
    )
    assert reader_ingests.status_code == 403 and status_pb2.Status.FromString(reader_ingests.data).code == 7
    reader_puts = client.put("/api/v1/alerts/rules", json={"rules": []}, headers=bearer(made["reader"]))
    assert reader_puts.status_code == 403
    admin_reads = client.get("/api/v1/alerts/rules", headers=bearer(made["admin"]))
    assert admin_reads.status_code == 403  # scopes are independent: admin does not imply read
    assert client.put("/api/v1/alerts/rules", json={"rules": []}, headers=bearer(made["admin"])).status_code == 409
    # samplers run in services holding ingest keys
    assert client.get("/sampling?service=a", headers=bearer(made["ingester"])).status_code == 200
    assert client.post("/api/v2/spans", json=[], headers=bearer(made["ingester"])).status_code == 202


def test_metrics_and_health_open_or_protected_by_the_setting(keys: tuple[Path, dict[str, str]]) -> None:
    path, made = keys
    open_client = make_app(path).test_client()
    for url in ("/metrics", "/health", "/ready", "/openapi.json"):
        assert open_client.get(url).status_code == 200, url
    closed = make_app(path, auth_protect_metrics=True).test_client()
    for url in ("/metrics", "/health", "/ready"):
        assert closed.get(url).status_code == 401, url
        assert closed.get(url, headers=bearer(made["ingester"])).status_code == 403, url
        assert closed.get(url, headers=bearer(made["reader"])).status_code == 200, url
    assert closed.get("/openapi.json").status_code == 200


def test_the_identity_carries_the_keys_tenant(keys: tuple[Path, dict[str, str]]) -> None:
    path, made = keys
    app = make_app(path)
    with app.test_request_context("/api/services", headers=bearer(made["reader"])):
        assert app.preprocess_request() is None
        found = auth.identity()
        assert found.key_id == "reader" and found.tenant == "team-a" and found.scopes == {"read"}


def test_without_a_keys_file_everything_is_open_and_anonymous() -> None:
    app = create_app(Settings(install_templates=False))
    with app.test_request_context("/api/v2/spans", method="POST"):
        assert app.preprocess_request() is None
        assert auth.identity().key_id is None and auth.identity().tenant is None
    assert "securitySchemes" not in document(app).get("components", {})


def test_a_key_is_never_logged(keys: tuple[Path, dict[str, str]], caplog: pytest.LogCaptureFixture) -> None:
    path, made = keys
    caplog.set_level(logging.DEBUG)
    client = make_app(path).test_client()
    for key in made.values():
        client.get("/api/services", headers=bearer(key))
        client.get("/api/services", headers=bearer(key + "x"))
    assert not any(key in caplog.text for key in made.values())


def test_the_openapi_document_declares_the_schemes_and_each_operations_requirement(
    keys: tuple[Path, dict[str, str]],
) -> None:
    app = make_app(keys[0])
    spec = document(app)
    assert spec["components"]["securitySchemes"] == auth.SECURITY_SCHEMES
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method != "parameters"
    ]
    assert operations
    for path, method, operation in operations:
        assert "security" in operation, (path, method)
        if operation["security"]:
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
            assert operation["x-scopes"]
    ingest = spec["paths"]["/v1/traces"]["post"]
    assert ingest["x-scopes"] == ["ingest"]
    assert ingest["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("RpcStatus")
    jaeger = spec["paths"]["/api/traces/{trace_id}"]["get"]
    assert jaeger["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith("JaegerEnvelope")
    assert spec["paths"]["/openapi.json"]["get"]["security"] == []
    assert spec["paths"]["/metrics"]["get"]["security"] == []
    assert spec["paths"]["/api/v1/sampling/strategies"]["put"]["x-scopes"] == ["admin"]


# ------------------------------------------------------------------------------ credentials of the clients

SECRETS = {
    "es_api_key": "ZXNfYXBpX2tleV9zZWNyZXQ=",
    "kafka_sasl_password": "kafka-sasl-secret",
    "kafka_ssl_password": "kafka-keyfile-secret",
}


def secured(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "es_urls": ("https://es.example:9200",),
        "es_api_key": SECRETS["es_api_key"],
        "es_ca_certs": "/etc/ssl/certs/ca-certificates.crt",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "tracesearch",
        "kafka_sasl_password": SECRETS["kafka_sasl_password"],
        "kafka_ssl_cafile": "/etc/ssl/certs/ca-certificates.crt",
        "kafka_ssl_password": SECRETS["kafka_ssl_password"],
    }
    values.update(overrides)
    return Settings(**values)


def test_the_settings_repr_and_log_lines_redact_credentials(caplog: pytest.LogCaptureFixture) -> None:
    settings = secured(es_api_key="", es_username="elastic", es_password="es-basic-secret")
    caplog.set_level(logging.INFO)
    logging.getLogger("test").info("settings: %s / %r", settings, settings)
    for text in (repr(settings), str(settings), caplog.text):
        for secret in ("es-basic-secret", SECRETS["kafka_sasl_password"], SECRETS["kafka_ssl_password"]):
            assert secret not in text
        assert "kafka_sasl_password=***" in text and "kafka_sasl_username='tracesearch'" in text
    assert "es_api_key=***" in repr(secured())


def test_kafka_credentials_reach_the_producer_consumer_and_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka import KafkaConsumer

    from tracesearch.pipeline import kafka_sink
    from tracesearch.pipeline.kafka_ingester import consumer_config

    settings = secured(kafka_bootstrap=("127.0.0.1:1",))
    # api_version given: kafka-python then builds its clients without connecting (the broker here has no SASL).
    producer = kafka_sink.make_producer(settings, api_version=(2, 8))
    consumer = KafkaConsumer(**consumer_config(settings), api_version=(2, 8))
    try:
        for config in (producer.config, consumer.config):
            assert config["security_protocol"] == "SASL_SSL"
            assert config["sasl_mechanism"] == "SCRAM-SHA-512"
            assert config["sasl_plain_username"] == "tracesearch"
            assert config["sasl_plain_password"] == SECRETS["kafka_sasl_password"]
            assert config["ssl_cafile"] == "/etc/ssl/certs/ca-certificates.crt"
            assert config["ssl_password"] == SECRETS["kafka_ssl_password"]
            assert config["ssl_check_hostname"] is True
    finally:
        producer.close(timeout=1)
        consumer.close()
    seen: dict[str, Any] = {}

    class Admin:
        def __init__(self, **config: Any) -> None:
            seen.update(config)

        def create_topics(self, topics: Any) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(kafka_sink, "KafkaAdminClient", Admin)
    kafka_sink.ensure_topics(settings)
    assert seen["security_protocol"] == "SASL_SSL" and seen["sasl_plain_password"] == SECRETS["kafka_sasl_password"]


def test_plaintext_kafka_gets_no_tls_or_sasl_options() -> None:
    from tracesearch.pipeline.kafka_sink import security_config

    assert security_config(Settings()) == {"bootstrap_servers": ["127.0.0.1:9092"], "security_protocol": "PLAINTEXT"}
    mtls = security_config(
        Settings(kafka_security_protocol="SSL", kafka_ssl_certfile="/c.pem", kafka_ssl_keyfile="/k.pem")
    )
    assert mtls["ssl_certfile"] == "/c.pem" and mtls["ssl_keyfile"] == "/k.pem" and "sasl_mechanism" not in mtls


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TRACESEARCH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "use PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ({"TRACESEARCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs TRACESEARCH_KAFKA_SASL_MECHANISM and"),
        (
            {"TRACESEARCH_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "TRACESEARCH_KAFKA_SASL_MECHANISM": "plain"},
            "needs TRACESEARCH_KAFKA_SASL_USERNAME",
        ),
        ({"TRACESEARCH_KAFKA_SASL_USERNAME": "u"}, "TRACESEARCH_KAFKA_SASL_USERNAME is set but"),
        ({"TRACESEARCH_KAFKA_SSL_CAFILE": "/ca"}, "TRACESEARCH_KAFKA_SSL_CAFILE is set but"),
        ({"TRACESEARCH_KAFKA_SASL_MECHANISM": "GSSAPI"}, "TRACESEARCH_KAFKA_SASL_MECHANISM='GSSAPI'"),
        ({"TRACESEARCH_ES_CLIENT_CERT": "/c"}, "go together"),
        ({"TRACESEARCH_AUTH_RELOAD_INTERVAL": "0"}, "more than 0"),
    ],
)
def test_inconsistent_credentials_stop_the_start(environ: dict[str, str], message: str) -> None:
    from tracesearch.settings import SettingsError

    with pytest.raises(SettingsError, match=None) as caught:
        Settings.from_env(environ)
    assert message in str(caught.value)


def test_elasticsearch_credentials_reach_the_client() -> None:
    from tracesearch.storage.es.client import make_client

    client = make_client(secured())
    assert client._headers["authorization"] == f"ApiKey {SECRETS['es_api_key']}"
    node = next(iter(client.transport.node_pool.all()))
    assert node.config.ca_certs == "/etc/ssl/certs/ca-certificates.crt" and node.config.verify_certs
    basic_client = make_client(
        secured(es_api_key="", es_username="elastic", es_password="pw", es_client_cert="/c.pem", es_client_key="/k.pem")
    )
    expected = "Basic " + base64.b64encode(b"elastic:pw").decode()
    assert basic_client._headers["authorization"] == expected
    basic_node = next(iter(basic_client.transport.node_pool.all()))
    assert basic_node.config.client_cert == "/c.pem" and basic_node.config.client_key == "/k.pem"


def test_an_open_route_still_knows_a_key_sent_to_it(keys: tuple[Path, dict[str, str]]) -> None:
    path, made = keys
    app = make_app(path)
    with app.test_request_context("/metrics", headers=bearer(made["reader"])):
        assert app.preprocess_request() is None
        assert auth.identity().key_id == "reader" and auth.tenant() == "team-a"
    with app.test_request_context("/metrics"):
        assert app.preprocess_request() is None
        assert auth.identity().key_id is None and auth.tenant() is None
    client = app.test_client()
    assert client.get("/metrics", headers=bearer("tsk_nobody_" + "x" * 40)).status_code == 401


# ------------------------------------------------------------------------------------------ tenants


@pytest.mark.parametrize(("keys_on", "header_on"), [(True, True), (True, False), (False, True)])
def test_the_openapi_document_describes_the_tenant_header(
    keys: tuple[Path, dict[str, str]], keys_on: bool, header_on: bool
) -> None:
    app = (
        make_app(keys[0], tenant_header=header_on)
        if keys_on
        else create_app(Settings(install_templates=False, tenant_header=header_on))
    )
    spec = document(app)
    for path, ops in spec["paths"].items():
        for method, operation in ops.items():
            if method == "parameters":
                continue
            named = [p for p in operation.get("parameters", []) if p["name"] == "X-Scope-OrgID"]
            if path in ("/health", "/ready", "/openapi.json"):
                assert not named, path
                continue
            assert len(named) == 1 and named[0]["in"] == "header", (path, method)
            assert ("400" in operation["responses"]) or not header_on, (path, method)
            assert "TRACESEARCH_MAX_TENANTS" in operation["responses"]["403"]["description"], (path, method)
            if keys_on:
                assert "not bound to" in operation["responses"]["403"]["description"], (path, method)
    for tempo in ("/api/search", "/api/echo"):  # echo declares no errors of its own: its blueprint's shape
        refused = spec["paths"][tempo]["get"]["responses"]["403"]
        assert refused["content"]["application/json"]["schema"]["$ref"].endswith("TempoError"), tempo


def test_without_keys_or_the_header_setting_the_document_has_no_tenant_header() -> None:
    spec = document(create_app(Settings(install_templates=False)))
    assert not any(
        p["name"] == "X-Scope-OrgID"
        for ops in spec["paths"].values()
        for method, operation in ops.items()
        if method != "parameters"
        for p in operation.get("parameters", [])
    )


def test_probes_and_the_document_ignore_the_tenant_header(keys: tuple[Path, dict[str, str]]) -> None:
    client = make_app(keys[0], tenant_header=True).test_client()
    for path in ("/health", "/openapi.json"):
        assert client.get(path, headers={"X-Scope-OrgID": "Not A Tenant"}).status_code == 200, path
    assert client.get("/metrics", headers={"X-Scope-OrgID": "Not A Tenant"}).status_code == 400
