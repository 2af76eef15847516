from devstack import service, stack
from devstack.component import ComponentStatus, State
from devstack.settings import Settings


def test_export_lines_cover_only_healthy_components() -> None:
    statuses = [
        ComponentStatus("elasticsearch", State.HEALTHY, "http://127.0.0.1:9200"),
        ComponentStatus("kafka", State.STOPPED, "127.0.0.1:9092"),
        ComponentStatus("service", State.HEALTHY, "http://127.0.0.1:4318"),
        ComponentStatus("ingester", State.HEALTHY, "consumes 127.0.0.1:9092"),
    ]
    assert stack.export_lines(statuses) == [
        "export TRACESEARCH_ES_URL=http://127.0.0.1:9200",
        "export TRACESEARCH_BASE_URL=http://127.0.0.1:4318",
    ]


def test_status_lines() -> None:
    assert (
        ComponentStatus("kafka", State.HEALTHY, "127.0.0.1:9092", detail="pid 7").line()
        == "kafka          healthy      127.0.0.1:9092 (pid 7)"
    )
    assert (
        ComponentStatus("ingester", State.DISABLED, detail="TRACESEARCH_PIPELINE is not kafka").line()
        == "ingester       disabled     (TRACESEARCH_PIPELINE is not kafka)"
    )
    assert ComponentStatus("es", State.HEALTHY, "http://x", external=True).line().endswith("(external)")


def test_endpoint_lines_name_the_ingest_urls() -> None:
    text = "\n".join(stack.endpoint_lines(Settings.from_env({"TRACESEARCH_PORT": "5000"})))
    assert "http://127.0.0.1:5000/v1/traces" in text
    assert "http://127.0.0.1:5000/api/v2/spans" in text
    assert "127.0.0.1:9092" in text and "http://127.0.0.1:9200" in text


def test_service_spec_binds_the_port_and_points_at_the_stack() -> None:
    settings = Settings.from_env({"TRACESEARCH_PORT": "5000", "TRACESEARCH_DEVSTACK_ES_PORT": "9201"})
    spec = service.service_spec(settings)
    assert spec.argv[-3:] == ["--bind", "127.0.0.1:5000", "app:app"]
    assert spec.env["TRACESEARCH_ES_URL"] == "http://127.0.0.1:9201"
    assert spec.env["TRACESEARCH_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert spec.endpoint == "http://127.0.0.1:5000"


def test_ingester_only_with_the_kafka_pipeline() -> None:
    direct = [s.name for s in service.enabled_specs(Settings.from_env({"TRACESEARCH_PIPELINE": "direct"}))]
    kafka = [s.name for s in service.enabled_specs(Settings.from_env({"TRACESEARCH_PIPELINE": "kafka"}))]
    assert direct == ["service"]
    assert kafka == ["service", "ingester"]
    ingester = service.ingester_spec(Settings.from_env({}))
    assert ingester.argv[1:] == ["-m", "tracesearch", "ingester"]
    assert ingester.health is None
