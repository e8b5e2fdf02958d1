"""Faust's livelock check on a partition whose offset is being reset (aimesh.stream.transport.
position_pending), run on Faust's own check against a real consumer of the real broker."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from aimesh.stream.transport.position_pending import PositionPending


class _FaustCheck:
    """Faust's consumer thread, reduced to its livelock check and what that reads."""

    verify_event_path = AIOKafkaConsumerThread.verify_event_path
    _verify_aiokafka_event_path = AIOKafkaConsumerThread._verify_aiokafka_event_path
    tp_fetch_request_timeout_secs = tp_stream_timeout_secs = tp_commit_timeout_secs = 300.0

    def __init__(self, kafka: AIOKafkaConsumer) -> None:
        self.kafka = kafka
        self.time_started = time.monotonic()
        self.log = logging.getLogger("faust-check")
        monitor = SimpleNamespace(stream_inbound_time={})
        topics = SimpleNamespace(acks_enabled_for=lambda topic: True)
        self.consumer = SimpleNamespace(app=SimpleNamespace(monitor=monitor, topics=topics))
        self.tp_last_committed_at: dict[TP, float] = {}

    def _ensure_consumer(self) -> AIOKafkaConsumer:
        return self.kafka


class _Guarded(PositionPending, _FaustCheck):
    pass


async def _check_while_rewinding(url: str, check_class: type) -> None:
    topic = f"rewound-{uuid.uuid4().hex[:8]}"
    servers = url.split("://", 1)[1]
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    await producer.send_and_wait(topic, b"one", partition=0)
    await producer.stop()
    kafka = AIOKafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    await kafka.start()
    try:
        partition = TopicPartition(topic, 0)
        kafka.assign([partition])
        await kafka.getone()  # fetched: the partition has a fetch time and a highwater
        rewinding = asyncio.create_task(kafka.seek_to_beginning(partition))
        await asyncio.sleep(0)  # the reset is requested, its answer not yet in
        try:
            check_class(kafka).verify_event_path(time.monotonic(), TP(topic, 0))
        finally:
            await rewinding
    finally:
        await kafka.stop()


def test_faust_alone_asserts_on_a_partition_whose_offset_is_being_reset(broker_url):
    with pytest.raises(AssertionError) as raised:
        asyncio.run(_check_while_rewinding(broker_url, _FaustCheck))
    assert raised.traceback[-1].path.name == "subscription_state.py"  # aiokafka's `position`


def test_the_check_passes_over_it_until_it_has_a_position(broker_url):
    asyncio.run(_check_while_rewinding(broker_url, _Guarded))
