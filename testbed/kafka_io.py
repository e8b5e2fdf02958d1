"""Reading and writing the mesh's topics over a real Kafka connection, as an outside client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient


def _bootstrap(url: str) -> str:
    return url.split("://", 1)[1]


async def _produce(url: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(url))
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def produce(url: str, topic: str, *messages: tuple[bytes | None, bytes]) -> None:
    asyncio.run(_produce(url, topic, list(messages)))


def _loads(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


async def _read(url: str, topic: str, idle: float, committed: bool) -> list[tuple[Any, Any]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=_bootstrap(url), auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )  # fmt: skip
    await consumer.start()
    found: list[tuple[Any, Any]] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle * 1000))
            if not batch:
                return found
            for records in batch.values():
                for record in records:
                    found.append((_loads(record.key), _loads(record.value)))
    finally:
        await consumer.stop()


def read_topic(
    url: str, topic: str, idle: float = 1.5, committed: bool = False
) -> list[tuple[Any, Any]]:
    """Every (key, value) on the topic so far, values parsed as JSON; with `committed`, only
    what committed transactions wrote (what an exactly-once reader sees)."""
    return asyncio.run(_read(url, topic, idle, committed))


async def _replicas(url: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=_bootstrap(url))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [len(partition["replicas"]) for partition in described["partitions"]]


def replica_counts(url: str, topic: str) -> list[int]:
    """How many replicas each partition of the topic has."""
    return asyncio.run(_replicas(url, topic))
