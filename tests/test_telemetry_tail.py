"""The dashboard's telemetry tail, against a real broker: it waits for the topic without making
it, starts a few records before the end, follows new ones, and skips what is not telemetry."""

from __future__ import annotations

import asyncio
import json
import uuid

from aiokafka.admin import AIOKafkaAdminClient

from aimesh.cycle.records import Telemetry
from aimesh.web.telemetry_tail import TelemetryTail
from testbed.kafka_io import produce


def record(n: int) -> bytes:
    value = Telemetry(
        agent="sandbox", type="metric", message="sandbox_ms", value=float(n), timestamp=float(n),
        extra={"cycle_id": f"c{n}"},
    )  # fmt: skip
    return value.dumps()


async def topics(server: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=[server])
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


async def until(check, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not reached in time")


async def partition_count(server: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=[server])
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


def values(tail: TelemetryTail) -> list[float]:
    return [r["value"] for r in tail.records()]


async def test_the_tail_waits_for_the_topic_then_keeps_its_newest_records(broker_url):
    server = broker_url.removeprefix("kafka://")
    topic = f"telemetry-{uuid.uuid4().hex[:8]}"
    tail = TelemetryTail(keep=3)
    following = asyncio.ensure_future(tail.follow([server], topic, client_id="tail-test"))
    try:
        await asyncio.sleep(1.5)
        assert topic not in await topics(server), "waiting must not create the topic"
        await asyncio.to_thread(produce, broker_url, topic, (b'"k"', record(0)))
        await until(lambda: values(tail) == [0.0])
        await asyncio.to_thread(
            produce, broker_url, topic, *[(b'"k"', record(n)) for n in range(1, 6)]
        )
        await until(lambda: values(tail) == [3.0, 4.0, 5.0])
        assert tail.records()[0] == {
            "agent": "sandbox", "type": "metric", "message": "sandbox_ms", "value": 3.0,
            "timestamp": 3.0, "extra": {"cycle_id": "c3"},
        }  # fmt: skip
        junk = [b"not json", json.dumps({"agent": "x", "type": "gossip"}).encode()]
        await asyncio.to_thread(
            produce, broker_url, topic, *[(b'"k"', j) for j in junk], (b'"k"', record(6))
        )
        await until(lambda: values(tail) == [6.0])
        assert tail.undecodable == 2
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)


async def test_a_new_tail_starts_a_share_of_its_records_before_each_partitions_end(broker_url):
    server = broker_url.removeprefix("kafka://")
    topic = f"telemetry-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(produce, broker_url, topic, *[(b'"k"', record(n)) for n in range(10)])
    share = -(-8 // await partition_count(server, topic))
    tail = TelemetryTail(keep=8)
    following = asyncio.ensure_future(tail.follow([server], topic, client_id="tail-test"))
    try:
        await until(lambda: len(tail.records()) == share)
        await asyncio.sleep(1.0)
        assert values(tail) == [float(n) for n in range(10 - share, 10)]
        await asyncio.to_thread(produce, broker_url, topic, (b'"j"', record(10)))
        await until(lambda: values(tail)[-1:] == [10.0])
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
