"""The dashboard's telemetry: the newest records of `ai_telemetry`, read as bytes.

A Faust agent used to decode every telemetry record into a `Telemetry` as it arrived, whether
anyone looked or not: about 4 ms of a worker's CPU per cycle under bench/mesh_throughput.py, a
sixth of all its work (46.5 against 42.8 cycles/s without it). The tail reads the topic's batches
with a plain consumer outside the consumer group and keeps the values as bytes; a record is
decoded when a view first asks for it. It follows every partition, so each worker's dashboard
shows the whole mesh, and starts a share of `keep` records before each partition's end, so a
dashboard opened on a new worker shows what just happened.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from aimesh.cycle.records import Telemetry

log = logging.getLogger(__name__)
FIELDS = tuple(Telemetry._options.fields)
RETRY_S = 1.0
FETCH_WAIT_MS = 1000
FETCH_MIN_BYTES = 1 << 20
"""A fetch waits a second unless a megabyte is ready: a view a second old is fresh enough, and
a fetch answered at every record cost the embedded broker more CPU than the worker saved."""


def decoded(raw: bytes) -> dict[str, Any] | None:
    """A telemetry record as the views show it, or None for anything that is not one: every
    field present, and no problem by the record's own checks (`Telemetry.problems`)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not set(FIELDS) <= data.keys():
        return None
    record = Telemetry(**{name: data[name] for name in FIELDS})
    return None if record.problems() else record.asdict()


def _timestamp(record: dict[str, Any]) -> float:
    stamp = record["timestamp"]
    return float(stamp) if isinstance(stamp, int | float) else 0.0


class TelemetryTail:
    """The last `keep` records, oldest first; each decoded once, on first read."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._entries: collections.deque[list[Any]] = collections.deque(maxlen=keep)
        self.undecodable = 0

    def add(self, raw: bytes | None) -> None:
        if raw is not None:
            self._entries.append([raw, None])

    def records(self) -> list[dict[str, Any]]:
        """Every kept record that decodes, oldest first by its timestamp (partitions are read
        one batch after another, so arrival order mixes them)."""
        kept = []
        for entry in list(self._entries):
            if entry[1] is None and entry[0] is not None:
                entry[1] = decoded(entry[0])
                entry[0] = None
                self.undecodable += entry[1] is None
            if entry[1] is not None:
                kept.append(entry[1])
        kept.sort(key=_timestamp)
        return kept

    async def follow(self, servers: list[str], topic: str, *, client_id: str) -> None:
        """Read `topic` until cancelled; a broker that is away is retried, not fatal."""
        while True:
            try:
                numbers = await _partitions_once_created(servers, topic, client_id)
                await self._read(servers, topic, numbers, client_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the dashboard's feed must not take the worker down
                log.warning("telemetry tail: %s: %s; retrying", type(exc).__name__, exc)
            await asyncio.sleep(RETRY_S)

    async def _read(
        self, servers: list[str], topic: str, numbers: list[int], client_id: str
    ) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=None,
            enable_auto_commit=False,
            client_id=client_id,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        partitions = [TopicPartition(topic, number) for number in numbers]
        try:
            await consumer.start()
            consumer.assign(partitions)  # at once: aiokafka 0.14 hangs stopping an unassigned one
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            share = -(-self.keep // len(partitions))
            for partition in partitions:
                consumer.seek(partition, max(starts[partition], ends[partition] - share))
            self._entries.clear()  # read again from there, after a reconnect too
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=self.keep)
                for records in batches.values():
                    for record in records:
                        self.add(record.value)
        finally:
            await consumer.stop()


async def _partitions_once_created(servers: list[str], topic: str, client_id: str) -> list[int]:
    """The topic's partition numbers, once it exists. Asking for the topic by name before that
    could create it, with the broker's default partition count instead of the mesh's."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, client_id=client_id)
    await admin.start()
    try:
        while topic not in await admin.list_topics():
            await asyncio.sleep(RETRY_S)
        (described,) = await admin.describe_topics([topic])
        return sorted(partition["partition"] for partition in described["partitions"])
    finally:
        await admin.close()
