"""Faust's Kafka transport with three fixes: the worker subscribes only once the broker's
metadata shows its topics, a partition nobody committed yet is read from its start, and a commit
waits for agents' open output sections (`commit_barrier`).

A topic the worker has just created can be missing from the metadata a broker serves for a moment
(Kafka's brokers learn of it from the controller). A group leader that assigns in that moment
leaves the topic out ("Ignoring missing topic"), and no member reads it until the next metadata
refresh, five minutes later by default: on Kafka 4.4 a worker started on a fresh cluster sometimes
never read `ai_verified_solutions`, and no passed cycle was archived (tests/test_faults.py).

After a rebalance Faust recovers its tables while the fetcher already runs, drops what was fetched
meanwhile, and then "seeks to the committed offsets". aiokafka's `seek_to_committed` skips
partitions without a committed offset (or at 0), so the records fetched during recovery are gone
for good: a worker killed before its first commit came back, recovered, and never processed the
tasks it had been given (seen in tests/test_faults.py, on Tansu and on Kafka; faust-streaming
issues #216 and #596 describe the same race). With `auto_offset_reset="earliest"` a partition
without a commit should be read from its beginning, so this consumer seeks there explicitly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.errors import IllegalStateError, KafkaError
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from aimesh.commit_barrier import commit_barrier

TOPICS_KNOWN_TIMEOUT_S = 30.0
TOPICS_KNOWN_POLL_S = 0.2


async def topics_missing_after(client: Any, topics: set[str], timeout: float) -> set[str]:
    """The topics still missing from the cluster's metadata, polled until none is or `timeout`
    seconds are up (`client` is an aiokafka client; call it on the loop the client lives on)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster = await client.fetch_all_metadata()
            missing = {topic for topic in topics if not cluster.partitions_for_topic(topic)}
        except KafkaError:  # no broker answered: try again until the deadline
            missing = set(topics)
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(TOPICS_KNOWN_POLL_S)


class ConsumerThread(driver.AIOKafkaConsumerThread):
    async def subscribe(self, topics: Iterable[str]) -> None:
        wanted = set(topics)
        client = self._ensure_consumer()._client
        missing = await self.call_thread(
            topics_missing_after, client, wanted, TOPICS_KNOWN_TIMEOUT_S
        )
        if missing:
            self.log.warning(
                "subscribing although the broker's metadata still lacks %s after %.0f s",
                sorted(missing),
                TOPICS_KNOWN_TIMEOUT_S,
            )
        await super().subscribe(wanted)


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _commit_offsets(self, offsets: Mapping[TP, int], *args: Any, **kwargs: Any) -> bool:
        async with commit_barrier.exclusive():
            return bool(await super()._commit_offsets(offsets, *args, **kwargs))

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        never_committed = [
            tp
            for tp, offset in committed.items()
            if not offset and not self._is_changelog_tp(tp) and "-__assignor-" not in tp.topic
        ]
        if never_committed:
            self.log.info("reading %d uncommitted partitions from the start", len(never_committed))
            try:
                await self._thread.seek_to_beginning(*never_committed)
            except IllegalStateError as exc:  # revoked meanwhile: the next assignment seeks again
                self.log.warning("could not rewind uncommitted partitions: %s", exc)
        return committed


class Transport(driver.Transport):
    Consumer: Any = Consumer
