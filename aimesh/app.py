"""The Faust application, and nothing else: agents, tables and views register themselves on it.

Importing it reads the environment and nothing more: it opens no connection and writes no file
(tests/test_app_import.py). What needs the broker or the disk waits until Faust first reads its
configuration, which a starting worker does: the broker-dependent settings (`BrokerOptions`: the
measured workarounds for the embedded Tansu, Faust's defaults on Apache Kafka, exactly-once mode
when asked for), the data directory, the transport with the project's fixes, the web server.
"""

from __future__ import annotations

from typing import Any

import faust
from typing_extensions import override

from aimesh.settings import Settings
from aimesh.stream.broker_profile import BrokerOptions
from aimesh.stream.deadletter import DeadLetteringTopic
from aimesh.stream.durable_table import DurableTable
from aimesh.stream.transport import Transport
from aimesh.web.server import Web

settings = Settings.from_env()
broker_options = BrokerOptions(settings)


class MeshApp(faust.App):
    """Faust's App, with the mesh's transport and web server made where Faust makes its own."""

    @override
    def _load_settings(self, *, silent: bool = False) -> Any:
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust's datadir lives there
        return super()._load_settings(silent=silent)

    @override
    def _new_transport(self) -> Transport:
        """Faust's transport, with the fixes of aimesh.stream.transport."""
        return Transport(self.conf.broker_consumer, self)

    @property
    def fetch_max_wait_ms(self) -> int | None:
        """How long a consumer's fetch may wait for records (aimesh.stream.transport.fetch_wait)."""
        return broker_options.fetch_max_wait_ms

    @override
    def _new_web(self) -> Web:
        """Faust's aiohttp server, leaving `/` to the dashboard."""
        return Web(self)


app = MeshApp(
    settings.app_id,
    broker=settings.broker,
    autodiscover=[
        "aimesh.agents",
        "aimesh.web",
        "aimesh.stream.diagnostics",
        "aimesh.stream.recovery_watch",
    ],
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
)
app.config_from_object(broker_options)
