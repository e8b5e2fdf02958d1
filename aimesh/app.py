"""The Faust application, and nothing else: agents, tables and views register themselves on it.

Broker settings depend on the broker (`broker_profile`): the measured workarounds for the
embedded Tansu, Faust's defaults on Apache Kafka, and exactly-once mode when asked for.
"""

from __future__ import annotations

import faust

from aimesh.broker_profile import detect
from aimesh.deadletter import DeadLetteringTopic
from aimesh.durable_table import DurableTable
from aimesh.settings import Settings
from aimesh.transport import Transport
from aimesh.web.server import Web

settings = Settings.from_env()
settings.data_dir.mkdir(parents=True, exist_ok=True)
broker = detect(settings)

app = faust.App(
    settings.app_id,
    broker=settings.broker,
    autodiscover=["aimesh.agents", "aimesh.web", "aimesh.diagnostics"],
    origin="aimesh",
    Topic=DeadLetteringTopic,
    Table=DurableTable,
    key_serializer="json",
    value_serializer="json",
    store="memory://",
    datadir=str(settings.data_dir / "faust"),
    topic_partitions=settings.partitions,
    topic_allow_declare=True,
    consumer_auto_offset_reset="earliest",
    broker_max_poll_interval=max(600.0, settings.llm_timeout * 2),
    stream_processing_timeout=max(600.0, settings.llm_timeout * 2),
    web_bind=settings.web_host,
    web_host=settings.web_host,
    web_port=settings.web_port,
    **broker.faust_options(settings),
)
# Before anything uses the app's transport: Faust's, with uncommitted partitions read from start.
app.transport = Transport(app.conf.broker_consumer, app)
# Before any view registers: the web server that leaves `/` to the dashboard.
app.web = Web(app)
