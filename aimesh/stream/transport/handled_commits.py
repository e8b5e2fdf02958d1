"""A commit never passes a record that was handed to the agents and is not finished.

Faust commits the longest run of acknowledged offsets and lets that run start one offset past the
committed one (room for a transaction marker). The consumer and reviewer run two actors on one
queue, so the record at the committed offset can still be with the model while the next is done:
the commit skipped it, and a kill -9 in that moment would lose it. Here the offsets handed out
and not yet acknowledged are tracked, and no commit is made while the lowest of them lies below
the first acknowledged one. Transaction markers are never handed out, so they still do not block
a commit.

The price: a record handed out that never gets acknowledged nor fetched again (a delivery cut off
by a rebalance that keeps its partition here) holds its partition's commits back until the next
rebalance or restart, which then reads it again. Faust alone would have skipped it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Set
from typing import Any

from faust.types import TP, Message
from typing_extensions import override

from aimesh.stream.transport.mixin_base import ConsumerMixinBase


class HandledCommits(ConsumerMixinBase):
    """Mixin for Faust's Consumer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed_out: defaultdict[TP, set[int]] = defaultdict(set)
        hand_out = self.callback
        acks_enabled_for = self.app.topics.acks_enabled_for

        async def tracked(message: Message) -> None:
            if acks_enabled_for(message.topic):  # changelogs are never acknowledged
                self.handed_out[message.tp].add(message.offset)
            await hand_out(message)

        self.callback = tracked

    @override
    def ack(self, message: Message) -> bool:
        counted = super().ack(message)
        if message.acked:
            self.handed_out[message.tp].discard(message.offset)
        return counted

    def _pending(self, tp: TP) -> set[int]:
        """The partition's offsets handed out and not finished, at or past the committed one
        (copies of committed records may never be acknowledged: they are forgotten here)."""
        handed_out = self.handed_out[tp]
        committed = self._committed_offset.get(tp)
        if committed is not None:
            handed_out.difference_update([o for o in list(handed_out) if o < committed])
        return handed_out

    @override
    def _new_offset(self, tp: TP) -> int | None:
        pending = self._pending(tp)
        acked = self._acked[tp]
        if pending and acked and min(acked) > min(pending):
            return None
        return super()._new_offset(tp)

    @override
    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        """Keep tracking through the revocation: Faust forgets the committed offsets first, then
        commits while the agents finish their records; so prune while those offsets are known,
        and forget the partitions only once Faust is done with them."""
        for tp in revoked:
            self._pending(tp)
        await super().on_partitions_revoked(revoked)
        for tp in revoked:
            self.handed_out.pop(tp, None)
