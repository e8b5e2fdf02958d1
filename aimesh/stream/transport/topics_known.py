"""The worker subscribes only once every broker's metadata shows every one of its topics.

A topic the worker has just created can be missing from the metadata a broker serves for a moment
(Kafka's brokers learn of it from the controller, each at its own pace). A group leader that
assigns in that moment leaves the topic out ("Ignoring missing topic"), and no member reads it
until the next metadata refresh, five minutes later by default: on Kafka 4.4 a worker started on a
fresh cluster sometimes never read `ai_verified_solutions`, and no passed cycle was archived
(tests/test_faults.py).

Asking one broker is not enough on a cluster: aiokafka asks a random broker for the metadata it
assigns with. Under load, on three brokers, the broker asked here listed every topic while the
one asked for the assignment two seconds later still lacked `ai_reviews` and
`ai_verified_solutions`: no attempt was ever archived. So every broker the client knows of is
asked; one that does not answer is skipped (it serves no metadata either until it is back, and
then it has caught up with the controller).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest
from typing_extensions import override

from aimesh.stream.transport.mixin_base import ConsumerThreadMixinBase

TOPICS_KNOWN_TIMEOUT_S = 30.0
TOPICS_KNOWN_POLL_S = 0.2


async def _missing_on(client: Any, node_id: Any, topics: set[str]) -> set[str] | None:
    """The topics one broker's metadata lacks; None when that broker does not answer."""
    conn = await client._get_conn(node_id)
    if conn is None:
        return None
    try:
        response = await conn.send(MetadataRequest(None))  # all topics: naming one may create it
    except (KafkaError, TimeoutError):
        return None
    cluster = ClusterMetadata()
    cluster.update_metadata(response)
    return {topic for topic in topics if not cluster.partitions_for_topic(topic)}


async def missing_on_some_broker(client: Any, topics: set[str]) -> set[str]:
    """The topics that the metadata of at least one answering broker lacks (all of them when
    no broker answers)."""
    answers = [
        await _missing_on(client, broker.nodeId, topics) for broker in client.cluster.brokers()
    ]
    answered = [missing for missing in answers if missing is not None]
    return set().union(*answered) if answered else set(topics)


async def topics_missing_after(client: Any, topics: set[str], timeout: float) -> set[str]:
    """The topics still missing from some broker's metadata, polled until none is or `timeout`
    seconds are up (`client` is an aiokafka client; call it on the loop the client lives on)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await client.fetch_all_metadata()  # learns of brokers that joined meanwhile
        except KafkaError:
            pass
        missing = await missing_on_some_broker(client, topics)
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(TOPICS_KNOWN_POLL_S)


class TopicsKnown(ConsumerThreadMixinBase):
    """Mixin for Faust's aiokafka consumer thread."""

    @override
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
