"""Under exactly-once, table recovery reads each changelog up to its last stable offset as the
broker reports it.

In a transaction, Faust's aiokafka driver answers "highwaters" from the consumer's cache of the
last fetch response, which holds nothing for a partition just assigned. Recovery then saw -1 for
every changelog, restored nothing, and the partitions' new owner went on with empty tables: in the
exactly-once Producer test a cycle's archive join lost its task row and the cycle was never
archived. ListOffsets with read_committed isolation (the consumer's) returns the last stable
offset itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from faust.types import TP
from typing_extensions import override

from aimesh.stream.transport.mixin_base import ConsumerThreadMixinBase


class StableHighwaters(ConsumerThreadMixinBase):
    """Mixin for Faust's aiokafka consumer thread."""

    @override
    async def _highwaters(self, partitions: Iterable[TP]) -> Mapping[TP, int]:
        return await self._ensure_consumer().end_offsets(list(partitions))
