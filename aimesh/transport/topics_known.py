"""The worker subscribes only once the broker's metadata shows every one of its topics.

A topic the worker has just created can be missing from the metadata a broker serves for a moment
(Kafka's brokers learn of it from the controller). A group leader that assigns in that moment
leaves the topic out ("Ignoring missing topic"), and no member reads it until the next metadata
refresh, five minutes later by default: on Kafka 4.4 a worker started on a fresh cluster sometimes
never read `ai_verified_solutions`, and no passed cycle was archived (tests/test_faults.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.errors import KafkaError

from aimesh.transport.mixin_base import ConsumerThreadMixinBase

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


class TopicsKnown(ConsumerThreadMixinBase):
    """Mixin for Faust's aiokafka consumer thread."""

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
