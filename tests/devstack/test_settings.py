import pytest

from devstack.errors import DevstackError
from devstack.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.es_version == "8.19.21"
    assert settings.es_major == 8
    assert settings.es_url == "http://127.0.0.1:9200"
    assert settings.es_transport_port == 9300
    assert settings.es_heap == "512m"
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.kafka_controller_port == 9093
    assert settings.service_url == "http://127.0.0.1:4318"
    assert settings.kafka_pipeline  # make up runs the Kafka topology by default


def test_ports_version_heap_and_pipeline_from_env() -> None:
    settings = Settings.from_env(
        {
            "TRACESEARCH_DEVSTACK_ES_VERSION": "9.3.2",
            "TRACESEARCH_DEVSTACK_ES_PORT": "9201",
            "TRACESEARCH_DEVSTACK_ES_HEAP": "1g",
            "TRACESEARCH_DEVSTACK_KAFKA_PORT": "19092",
            "TRACESEARCH_PORT": "5000",
            "TRACESEARCH_PIPELINE": "Kafka",
        }
    )
    assert settings.es_major == 9
    assert (settings.es_port, settings.es_transport_port) == (9201, 9301)
    assert settings.es_heap == "1g"
    assert (settings.kafka_port, settings.kafka_controller_port) == (19092, 19093)
    assert settings.service_url == "http://127.0.0.1:5000"
    assert settings.kafka_pipeline


def test_external_endpoints_replace_the_local_ones() -> None:
    settings = Settings.from_env(
        {"TRACESEARCH_ES_URL": "http://es.example:9200/", "TRACESEARCH_KAFKA_BOOTSTRAP": "k:9092"}
    )
    assert settings.es_external_url == "http://es.example:9200"
    assert settings.es_url == "http://es.example:9200"
    assert settings.kafka_bootstrap == "k:9092"


def test_our_own_exported_urls_do_not_count_as_external() -> None:
    # What `python -m devstack env` exports must not stop `down` from managing our servers.
    settings = Settings.from_env(
        {"TRACESEARCH_ES_URL": "http://127.0.0.1:9200", "TRACESEARCH_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}
    )
    assert settings.es_external_url is None
    assert settings.kafka_external_bootstrap is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRACESEARCH_DEVSTACK_ES_VERSION", "9.3", "not a version"),
        ("TRACESEARCH_DEVSTACK_ES_HEAP", "512", "not a JVM size"),
        ("TRACESEARCH_DEVSTACK_ES_PORT", "http", "not a port number"),
        ("TRACESEARCH_DEVSTACK_KAFKA_PORT", "70000", "outside 1..65535"),
        ("TRACESEARCH_DEVSTACK_ES_PORT", "65500", "ES transport"),
    ],
)
def test_bad_values_are_named_in_the_error(name: str, value: str, message: str) -> None:
    with pytest.raises(DevstackError, match=message):
        Settings.from_env({name: value})


def test_colliding_ports_are_rejected() -> None:
    with pytest.raises(DevstackError, match="port 9093 is planned twice"):
        Settings.from_env({"TRACESEARCH_PORT": "9093"})
