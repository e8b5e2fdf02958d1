"""The worker subscribes only once every broker's metadata shows its topics: a topic left out of
an assignment is not read until the next metadata refresh (aimesh.stream.transport.topics_known)."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

from aiokafka import AIOKafkaClient, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.metadata import MetadataResponse_v0

from aimesh.stream.transport.topics_known import missing_on_some_broker, topics_missing_after
from aimesh.stream.transport.tracked_topics import watch


def _bootstrap(url: str) -> str:
    return url.split("://", 1)[1]


async def _create_later(url: str, topic: str, delay: float) -> None:
    await asyncio.sleep(delay)
    admin = AIOKafkaAdminClient(bootstrap_servers=_bootstrap(url))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()


async def _wait_for(url: str, topics: set[str], timeout: float, create_after: float | None):
    client = AIOKafkaClient(bootstrap_servers=_bootstrap(url))
    await client.bootstrap()
    try:
        started = time.monotonic()
        creating = [
            asyncio.create_task(_create_later(url, topic, create_after))
            for topic in topics
            if create_after is not None
        ]
        missing = await topics_missing_after(client, topics, timeout)
        await asyncio.gather(*creating)
        return missing, time.monotonic() - started
    finally:
        await client.close()


def test_waits_for_a_topic_created_meanwhile(broker_url):
    topic = f"later-{uuid.uuid4().hex[:8]}"
    missing, took = asyncio.run(_wait_for(broker_url, {topic}, 20, create_after=1.0))
    assert missing == set()
    assert 1.0 <= took < 20


def test_names_the_topics_still_missing_when_the_time_is_up(broker_url):
    topic = f"never-{uuid.uuid4().hex[:8]}"
    missing, took = asyncio.run(_wait_for(broker_url, {topic}, 1.0, create_after=None))
    assert missing == {topic}
    assert took >= 1.0


class _Broker:
    """A broker's connection that answers metadata requests with the topics it knows of."""

    def __init__(self, knows: set[str]) -> None:
        self.knows = knows

    async def send(self, request):
        partition = (0, 0, 1, [1], [1])  # error, number, leader, replicas, isr
        topics = [(0, topic, [partition]) for topic in sorted(self.knows)]
        return MetadataResponse_v0(brokers=[(1, "127.0.0.1", 9092)], topics=topics)


def _cluster_of(*brokers: _Broker | None) -> SimpleNamespace:
    """An aiokafka client's view of a cluster: broker n is `brokers[n-1]`, None when it is down."""
    conns = dict(enumerate(brokers, start=1))

    async def get_conn(node_id):
        return conns[node_id]

    nodes = [SimpleNamespace(nodeId=node_id) for node_id in conns]
    return SimpleNamespace(cluster=SimpleNamespace(brokers=lambda: nodes), _get_conn=get_conn)


def _missing(*brokers: _Broker | None) -> set[str]:
    return asyncio.run(missing_on_some_broker(_cluster_of(*brokers), {"a", "b"}))


def test_a_topic_counts_as_missing_while_any_answering_broker_lacks_it():
    both, lagging = _Broker({"a", "b"}), _Broker({"a"})
    assert _missing(both, lagging, None) == {"b"}
    assert _missing(both, both, None) == set()
    assert _missing(None, None) == {"a", "b"}


async def _after_the_watch_list_changes(url: str, watched: bool) -> tuple[bool, bool]:
    """Send to topic A (known from the producer's all-topics metadata), then to B (created after
    it, so aiokafka puts B on its watch list and refreshes), then queue a batch for A. Whether
    the metadata still knows A, and whether that batch was delivered within 5 s (it would expire
    after the request timeout: 8 s here, 20 min under Faust)."""
    early, late = f"early-{uuid.uuid4().hex[:8]}", f"late-{uuid.uuid4().hex[:8]}"
    await _create_later(url, early, 0)
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(url), request_timeout_ms=8000)
    await producer.start()
    try:
        if watched:
            watch(producer.client, early)
        await (await producer.send(early, b"first"))
        await _create_later(url, late, 0)
        if watched:
            watch(producer.client, late)
        await (await producer.send(late, b"joins the watch list"))
        await producer.client.force_metadata_update()
        known = producer.client.cluster.partitions_for_topic(early) is not None
        queued = await producer._message_accumulator.add_message(
            TopicPartition(early, 0), None, b"second", timeout=5
        )
        try:
            await asyncio.wait_for(asyncio.shield(queued), 5)
        except TimeoutError:
            return known, False
        return known, True
    finally:
        await producer.stop()


def test_aiokafka_forgets_a_topic_it_never_watched_and_its_batch_finds_no_leader(broker_url):
    known, delivered = asyncio.run(_after_the_watch_list_changes(broker_url, watched=False))
    assert (known, delivered) == (False, False)


def test_a_watched_topic_stays_known_and_its_batch_is_delivered(broker_url):
    known, delivered = asyncio.run(_after_the_watch_list_changes(broker_url, watched=True))
    assert (known, delivered) == (True, True)
