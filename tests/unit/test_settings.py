import dataclasses
import re

import pytest

from tracesearch.settings import (
    VARIABLES,
    VARIABLES_BY_FIELD,
    Settings,
    SettingsError,
)

NAMES = [v.name for v in VARIABLES]


def test_every_field_is_declared_once_with_its_variable():
    assert list(VARIABLES_BY_FIELD) == [f.name for f in dataclasses.fields(Settings)]
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("field_name", list(VARIABLES_BY_FIELD))
def test_every_variable_parses_its_default_into_the_field_default(field_name):
    variable = VARIABLES_BY_FIELD[field_name]
    assert variable.parse(variable.name, variable.default) == getattr(Settings(), field_name)


def test_no_arguments_give_what_an_empty_environment_gives():
    assert Settings() == Settings.from_env({})


def test_fields_can_still_be_given_by_name():
    settings = Settings(index_prefix="p", retention_s=0, es_urls=("http://es:9200",))
    assert (settings.index_prefix, settings.retention_s, settings.es_urls) == ("p", 0, ("http://es:9200",))
    assert settings.port == Settings().port


def test_extra_is_gone():
    assert "extra" not in {f.name for f in dataclasses.fields(Settings)}


def test_values_are_parsed_from_the_environment():
    settings = Settings.from_env(
        {
            "TRACESEARCH_PORT": "5000",
            "TRACESEARCH_WORKERS": "3",
            "TRACESEARCH_ES_URL": "http://a:9200/, http://b:9200 ,",
            "TRACESEARCH_ES_VERIFY_CERTS": "off",
            "TRACESEARCH_INDEX_PREFIX": " Traces ",
            "TRACESEARCH_INGEST_BATCH_WAIT": "1.5s",
            "TRACESEARCH_PIPELINE": "KAFKA",
            "TRACESEARCH_KAFKA_BOOTSTRAP": "k1:9092, k2:9092",
        }
    )
    assert settings.port == 5000 and settings.workers == 3
    assert settings.es_urls == ("http://a:9200", "http://b:9200")
    assert settings.es_verify_certs is False
    assert settings.index_prefix == "traces"
    assert settings.ingest_batch_wait_s == 1.5
    assert settings.pipeline == "kafka"
    assert settings.kafka_bootstrap == ("k1:9092", "k2:9092")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRACESEARCH_PORT", "http", "TRACESEARCH_PORT='http' is not an integer"),
        ("TRACESEARCH_PORT", "0", "TRACESEARCH_PORT=0 must be at least 1"),
        ("TRACESEARCH_PORT", "70000", "TRACESEARCH_PORT=70000 must be at most 65535"),
        ("TRACESEARCH_WORKERS", "0", "TRACESEARCH_WORKERS=0 must be at least 1"),
        ("TRACESEARCH_THREADS", "many", "TRACESEARCH_THREADS='many' is not an integer"),
        ("TRACESEARCH_MAX_REQUEST_BYTES", "10", "TRACESEARCH_MAX_REQUEST_BYTES=10 must be at least 1024"),
        ("TRACESEARCH_ES_VERIFY_CERTS", "maybe", "TRACESEARCH_ES_VERIFY_CERTS='maybe' is not a boolean"),
        ("TRACESEARCH_ES_TIMEOUT", "soon", "TRACESEARCH_ES_TIMEOUT='soon' is not a duration"),
        ("TRACESEARCH_PIPELINE", "pigeon", "TRACESEARCH_PIPELINE='pigeon': use direct or kafka"),
        ("TRACESEARCH_ES_URL", " , ", "TRACESEARCH_ES_URL is empty"),
    ],
)
def test_a_bad_value_names_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({name: value})


@pytest.mark.parametrize("name", NAMES)
def test_whatever_a_variable_refuses_the_message_names_it(name):
    for junk in ("-1", "x!", ""):
        try:
            Settings.from_env({name: junk})
        except SettingsError as exc:
            assert name in str(exc)
