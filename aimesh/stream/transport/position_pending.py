"""Faust's livelock check skips a partition whose position the consumer is still looking up.

Every few seconds Faust checks each assigned partition's progress and reads aiokafka's position of
it, expecting None where there is none. While a partition waits for its offset to be reset (just
assigned with no committed offset, or sent back to its start by `uncommitted_rewind`), aiokafka
0.14 has no position and asserts when asked. The AssertionError crashed the consumer and so the
worker: under load, in the two-worker fault test on Tansu, the surviving worker crashed 0.7 s
after "reading 1 uncommitted partitions from the start". A partition without a position has made
no progress to judge yet, so the check passes over it until it has one.
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from faust.types import TP
from typing_extensions import override

from aimesh.stream.transport.mixin_base import ConsumerThreadMixinBase


def partition_state(kafka: Any, tp: TP) -> Any:
    """aiokafka's state of an assigned partition (position, highwater, paused), or None."""
    subscription = kafka._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return None
    return assignment.state_value(TopicPartition(tp.topic, tp.partition))


def position_of(kafka: Any, tp: TP) -> int | None:
    """aiokafka's position on an assigned partition; None while it has none (being looked up)."""
    state = partition_state(kafka, tp)
    return state.position if state is not None and state.has_valid_position else None


class PositionPending(ConsumerThreadMixinBase):
    """Mixin for Faust's aiokafka consumer thread."""

    def has_position(self, tp: TP) -> bool:
        return position_of(self._ensure_consumer(), tp) is not None

    @override
    def verify_event_path(self, now: float, tp: TP) -> None:
        if self.has_position(tp):
            super().verify_event_path(now, tp)
