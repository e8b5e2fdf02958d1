"""The Faust application, and nothing else: agents, tables and views register themselves on it.

Broker settings here carry the measured workarounds for the embedded Tansu broker (DESIGN.md,
section 2); they are also safe on Apache Kafka.
"""

from __future__ import annotations

import faust

from aimesh.deadletter import DeadLetteringTopic
from aimesh.settings import Settings

DEFAULT_BROKER = "kafka://127.0.0.1:9092"

settings = Settings.from_env()
settings.data_dir.mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.app_id,
    broker=settings.broker_url or DEFAULT_BROKER,
    autodiscover=["aimesh.agents", "aimesh.web"],
    origin="aimesh",
    Topic=DeadLetteringTopic,
    key_serializer="json",
    value_serializer="json",
    store="memory://",
    datadir=str(settings.data_dir / "faust"),
    topic_partitions=settings.partitions,
    topic_allow_declare=True,
    consumer_auto_offset_reset="earliest",
    producer_max_batch_size=1,
    broker_session_timeout=10,
    broker_rebalance_timeout=10,
    broker_heartbeat_interval=3,
    broker_max_poll_interval=max(600.0, settings.llm_timeout * 2),
    stream_processing_timeout=max(600.0, settings.llm_timeout * 2),
    table_standby_replicas=0,
    web_bind=settings.web_host,
    web_host=settings.web_host,
    web_port=settings.web_port,
)
