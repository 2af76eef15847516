import base64
import xml.etree.ElementTree as ET
from pathlib import Path

from devstack import es_config, kafka_config, maven


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def _yaml_scalars(text: str) -> dict[str, str]:
    rows = (line.split("  #", 1)[0] for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value.strip() for key, value in (row.split(": ", 1) for row in rows)}


def test_elasticsearch_yml() -> None:
    text = es_config.render_elasticsearch_yml(
        http_port=9201, transport_port=9301, data_dir=Path("/d/data-es9"), logs_dir=Path("/d/logs")
    )
    assert _yaml_scalars(text) == {
        "cluster.name": '"tracesearch-devstack"',
        "node.name": '"devstack-node-1"',
        "discovery.type": '"single-node"',
        "network.host": '"127.0.0.1"',
        "http.port": "9201",
        "transport.port": "9301",
        "path.data": '"/d/data-es9"',
        "path.logs": '"/d/logs"',
        "xpack.security.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "node.store.allow_mmap": "false",
        "action.destructive_requires_name": "false",
    }


def test_heap_options() -> None:
    lines = es_config.render_heap_options("1g").splitlines()
    assert lines[1:] == ["-Xms1g", "-Xmx1g"]


JVM_OPTIONS = "-XX:+UseG1GC\n20-:--add-modules=jdk.incubator.vector\n-Dx=1\n"


def test_vector_module_option_is_commented_out_and_restored() -> None:
    without = es_config.adjust_jvm_options(JVM_OPTIONS, vector_module=False)
    assert "\n20-:--add-modules" not in without
    assert without.splitlines()[1].startswith("#")
    assert es_config.adjust_jvm_options(without, vector_module=False) == without
    assert es_config.adjust_jvm_options(without, vector_module=True) == JVM_OPTIONS
    assert es_config.adjust_jvm_options(JVM_OPTIONS, vector_module=True) == JVM_OPTIONS


def test_kafka_server_properties() -> None:
    props = _properties(
        kafka_config.render_server_properties(broker_port=9092, controller_port=9093, data_dir=Path("/k/data"))
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert props["log.dirs"] == "/k/data"
    assert props["auto.create.topics.enable"] == "true"
    assert props["num.partitions"] == "4"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == "1"


def test_kafka_log4j2_properties_log_to_the_console() -> None:
    props = {
        k.strip(): v.strip()
        for k, v in (
            line.split("=", 1)
            for line in kafka_config.render_log4j2_properties().splitlines()
            if line and not line.startswith("#")
        )
    }
    assert props["appender.console.type"] == "Console"
    assert props["rootLogger.appenderRef.console.ref"] == "console"


def test_pom_lists_the_dependencies() -> None:
    pom = maven.render_pom("kafka-runtime", kafka_config.DEPENDENCIES)
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.fromstring(pom)
    assert root.findtext("m:packaging", namespaces=ns) == "pom"
    deps = [
        (
            d.findtext("m:groupId", namespaces=ns),
            d.findtext("m:artifactId", namespaces=ns),
            d.findtext("m:version", namespaces=ns),
        )
        for d in root.iterfind("m:dependencies/m:dependency", ns)
    ]
    assert deps == kafka_config.DEPENDENCIES
    assert ("org.apache.kafka", "kafka_2.13", "4.1.1") in deps


def test_cluster_ids_look_like_kafkas() -> None:
    for _ in range(200):
        cluster_id = kafka_config.new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_http_port_is_read_back_from_elasticsearch_yml() -> None:
    text = es_config.render_elasticsearch_yml(
        http_port=9263, transport_port=9363, data_dir=Path("/d/data-es9"), logs_dir=Path("/d/logs")
    )
    assert es_config.http_port_in(text) == 9263
    assert es_config.http_port_in('cluster.name: "x"\n') is None


def test_a_bench_node_reads_lucene_through_mmap_as_elasticsearch_does_by_default() -> None:
    """Without mmap every ``_id`` lookup of a write is a ``pread`` system call: the bench nodes keep ES's default."""
    dev = es_config.render_elasticsearch_yml(http_port=1, transport_port=2, data_dir=Path("/d"), logs_dir=Path("/l"))
    bench = es_config.render_elasticsearch_yml(
        http_port=1, transport_port=2, data_dir=Path("/d"), logs_dir=Path("/l"), allow_mmap=True
    )
    assert _yaml_scalars(dev)["node.store.allow_mmap"] == "false"
    assert _yaml_scalars(bench)["node.store.allow_mmap"] == "true"
