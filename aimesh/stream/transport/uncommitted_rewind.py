"""A partition nobody has committed an offset for yet is read from its start.

After a rebalance Faust recovers its tables while the fetcher already runs, drops what was fetched
meanwhile, and then "seeks to the committed offsets". aiokafka's `seek_to_committed` skips
partitions without a committed offset (or at 0), so the records fetched during recovery were gone
for good: a worker killed before its first commit came back, recovered, and never processed the
tasks it had been given (seen in tests/test_faults.py, on Tansu and on Kafka; faust-streaming
issues #216 and #596 describe the same race). With `auto_offset_reset="earliest"` a partition
without a commit should be read from its beginning, so this consumer seeks there explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka.errors import IllegalStateError
from faust.types import TP
from typing_extensions import override

from aimesh.stream.transport.mixin_base import ConsumerMixinBase


class RewindUncommitted(ConsumerMixinBase):
    """Mixin for Faust's Consumer."""

    @override
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
