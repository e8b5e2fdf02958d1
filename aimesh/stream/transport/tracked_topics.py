"""The producer's metadata keeps every topic the producer sends to.

aiokafka's client asks the brokers for the topics on its watch list, or for all topics while that
list is empty, and a refresh replaces what it knew. A send puts its topic on the list only when
the metadata at hand lacks it. So a topic first seen in an all-topics answer never joins the
list, and once any other topic has joined, the next refresh drops it. A batch queued for it in
that moment has no leader, and the sender waits for a refresh that never brings the topic back,
until the next send to the same topic.

In the mesh that next send never came. On three Kafka brokers under load, a broker that had not
yet learned of a topic put that topic on the watch list; the Sandbox's verdict for
`ai_failed_solutions` then waited with no leader and nothing in flight. The Sandbox held its
commit-barrier section for that delivery, and every other agent waited for the commit that
waited for the section. The worker stood still with no error, the stall of
`tests/test_faults.py`'s three-broker test.

Here every topic joins the watch list before its first send, as in Kafka's Java client.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from aimesh.stream.transport.mixin_base import ProducerMixinBase


def watch(client: Any, topic: str) -> None:
    """Keep `topic` in every metadata refresh of this aiokafka client from now on."""
    if topic not in client._topics:
        client.add_topic(topic)  # refreshes in the background; send() waits if it must


class TrackedTopics(ProducerMixinBase):
    """Mixin for Faust's aiokafka Producer."""

    @override
    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        transactional_id = kwargs.get("transactional_id")
        kafka = self._transaction_producers.get(transactional_id) if transactional_id else None
        watch((kafka or self._ensure_producer()).client, topic)
        return await super().send(topic, *args, **kwargs)
