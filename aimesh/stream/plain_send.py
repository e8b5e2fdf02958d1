"""Sending outside Faust's transactions, for messages that are not the output of a consumed one.

In exactly-once mode every `topic.send` goes through a transactional producer chosen by the
destination partition, and a worker has those only for the partitions it owns: a new task or a
telemetry record for a partition owned by another worker would fail. Such messages commit no
input offset, so nothing is gained by a transaction; they go through the app's plain producer in
either mode, with the same serializers and the same partitioner as `topic.send`.
"""

from __future__ import annotations

from typing import Any

from faust.types import TopicT

from aimesh.app import app


async def send_plain(topic: TopicT, key: Any, value: Any, *, delivered: bool = False) -> None:
    """Hand the message to the producer; with `delivered`, wait until the broker has it."""
    key_bytes, headers = topic.prepare_key(key, None)
    value_bytes, headers = topic.prepare_value(value, None, headers=headers)
    producer = app.producer
    await producer.maybe_start()
    name = topic.get_topic_name()
    pending = await producer.send(name, key_bytes, value_bytes, None, None, headers)
    if delivered:
        await pending
