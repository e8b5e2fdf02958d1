"""No commit passes a record the agents were handed and have not finished (aimesh.stream.transport.
handled_commits), run on Faust's own ack and commit-offset code."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any
from weakref import WeakSet

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from faust.types.tuples import Message
from intervaltree import IntervalTree

from aimesh.stream.transport.handled_commits import HandledCommits

TOPIC = "ai_topic"
PARTITION = TP(TOPIC, 0)


class _FaustState:
    """Faust's Consumer bookkeeping, with its real `ack` and `_new_offset`, and no broker."""

    ack = FaustConsumer.ack
    _new_offset = FaustConsumer._new_offset

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True))
        self.delivered: list[int] = []
        self.callback = self._deliver
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._unacked_messages: WeakSet[Message] = WeakSet()
        self._n_acked = 0
        self._waiting_for_ack = None

    async def _deliver(self, message: Message) -> None:
        self.delivered.append(message.offset)


class Tracked(HandledCommits, _FaustState):
    pass


def _message(offset: int) -> Message:
    return Message(TOPIC, 0, offset, 0.0, 0, None, None, b"{}", None, tp=PARTITION)


def _hand_out(consumer: _FaustState, *offsets: int) -> list[Message]:
    messages = [_message(offset) for offset in offsets]
    for message in messages:
        asyncio.run(consumer.callback(message))
    return messages


def test_faust_alone_commits_past_a_record_still_in_progress():
    consumer = _FaustState()
    consumer._committed_offset[PARTITION] = 5
    _in_progress, second = _hand_out(consumer, 5, 6)
    consumer.ack(second)
    assert consumer._new_offset(PARTITION) == 7  # offset 5 skipped: the defect fixed here


def test_no_commit_while_the_committed_offset_is_in_progress():
    consumer = Tracked()
    consumer._committed_offset[PARTITION] = 5
    first, second = _hand_out(consumer, 5, 6)
    assert consumer.delivered == [5, 6]
    consumer.ack(second)
    assert consumer._new_offset(PARTITION) is None
    consumer.ack(first)
    assert consumer._new_offset(PARTITION) == 7


def test_a_gap_never_handed_out_such_as_a_transaction_marker_still_commits():
    consumer = Tracked()
    consumer._committed_offset[PARTITION] = 5
    (record,) = _hand_out(consumer, 6)
    consumer.ack(record)
    assert consumer._new_offset(PARTITION) == 7


def test_copies_of_committed_records_do_not_hold_commits_back():
    consumer = Tracked()
    consumer._committed_offset[PARTITION] = 5
    _hand_out(consumer, 3)  # a copy fetched again, below the committed offset, never acked
    (record,) = _hand_out(consumer, 5)
    consumer.ack(record)
    assert consumer._new_offset(PARTITION) == 6
    assert consumer.handed_out[PARTITION] == set()
