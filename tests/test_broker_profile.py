"""The broker profile: which broker the mesh talks to, judged from its ApiVersions, and the Faust
settings and exactly-once refusal that follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimesh.embedded.processes import free_port
from aimesh.settings import ConfigError, Settings, first_host_port
from aimesh.stream.broker_profile import TANSU_WORKAROUNDS, BrokerProfile, api_versions, detect
from tests.kafka_cluster import KafkaCluster


def test_tansu_is_recognised_by_its_missing_transaction_apis(broker_url):
    keys = api_versions(*first_host_port(broker_url))
    assert 18 in keys and 27 not in keys  # ApiVersions yes, WriteTxnMarkers no
    profile = detect(Settings(broker_url=broker_url))
    assert profile.kind == "tansu" and not profile.transactions
    assert "WriteTxnMarkers" in profile.reason


@pytest.mark.kafka
def test_apache_kafka_is_recognised_and_offers_transactions(tmp_path: Path):
    cluster = KafkaCluster(tmp_path / "kafka").start()
    try:
        profile = detect(Settings(broker_url=cluster.url))
    finally:
        cluster.stop()
    assert (profile.kind, profile.transactions) == ("kafka", True)


def test_configured_and_embedded_kinds_need_no_probe_and_silence_is_safe():
    unreachable = f"kafka://127.0.0.1:{free_port()}"
    assert detect(Settings(broker_url=unreachable, broker_kind="tansu")).kind == "tansu"
    assert detect(Settings(broker_url=unreachable, embedded=("broker",))).kind == "tansu"
    silent = detect(Settings(broker_url=unreachable))
    assert (silent.kind, silent.transactions) == ("unknown", False)
    assert "did not answer" in silent.reason
    assert TANSU_WORKAROUNDS.items() <= silent.faust_options(Settings()).items()


def test_workarounds_only_on_tansu_and_defaults_on_kafka():
    settings = Settings(replication=3)
    tansu = BrokerProfile("tansu", "test", transactions=False).faust_options(settings)
    kafka = BrokerProfile("kafka", "test", transactions=True).faust_options(settings)
    assert TANSU_WORKAROUNDS.items() <= tansu.items()
    assert kafka == {"topic_replication_factor": 3, "table_standby_replicas": 0}


def test_session_timeout_and_exactly_once_on_kafka():
    settings = Settings(session_timeout=9.0, exactly_once=True)
    options = BrokerProfile("kafka", "test", transactions=True).faust_options(settings)
    assert options["processing_guarantee"] == "exactly_once"
    assert options["broker_session_timeout"] == options["broker_rebalance_timeout"] == 9.0
    assert options["broker_heartbeat_interval"] == 3.0


def test_exactly_once_without_transactions_is_a_clear_error():
    profile = BrokerProfile("tansu", "it lacks WriteTxnMarkers", transactions=False)
    with pytest.raises(ConfigError, match="AIMESH_EXACTLY_ONCE=1 needs a broker with transactions"):
        profile.faust_options(Settings(exactly_once=True))


def test_broker_settings_are_read_and_checked():
    env = {"AIMESH_BROKER_KIND": "Kafka", "AIMESH_EXACTLY_ONCE": "1", "AIMESH_REPLICATION": "3",
           "AIMESH_SESSION_TIMEOUT": "12.5"}  # fmt: skip
    settings = Settings.from_env(env)
    assert (settings.broker_kind, settings.exactly_once) == ("kafka", True)
    assert (settings.replication, settings.session_timeout) == (3, 12.5)
    bad_values = {"AIMESH_BROKER_KIND": "redpanda", "AIMESH_REPLICATION": "0",
                  "AIMESH_SESSION_TIMEOUT": "3", "AIMESH_EXACTLY_ONCE": "maybe"}  # fmt: skip
    for name, bad in bad_values.items():
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: bad})


async def test_a_fetch_waits_briefly_on_tansu_and_as_faust_says_on_kafka():
    """Tansu waits a fetch's whole max wait when idle (each idle hop of a cycle took up to
    1.5 s); Kafka ends the wait when a record arrives, so Faust's wait stays there."""
    from types import SimpleNamespace

    from aiokafka import AIOKafkaConsumer

    from aimesh.stream.broker_profile import TANSU_FETCH_WAIT_MS, BrokerOptions
    from aimesh.stream.transport.fetch_wait import FetchWait

    def options(kind: str) -> BrokerOptions:
        settings = Settings.from_env({"AIMESH_BROKER_KIND": kind})
        return BrokerOptions(settings)

    assert options("tansu").fetch_max_wait_ms == TANSU_FETCH_WAIT_MS == 100
    assert options("kafka").fetch_max_wait_ms is None

    class Faust:  # what the mixin sits in front of: Faust's consumer thread
        def _create_worker_consumer(self, transport: object) -> AIOKafkaConsumer:
            return AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=1500)

    class Thread(FetchWait, Faust):
        def __init__(self, wait: int | None) -> None:
            self.app = SimpleNamespace(fetch_max_wait_ms=wait)

    # the attribute aiokafka hands its fetcher at start: a rename upstream fails here
    assert Thread(100)._create_worker_consumer(None)._fetch_max_wait_ms == 100
    assert Thread(None)._create_worker_consumer(None)._fetch_max_wait_ms == 1500
