"""An offset commit waits for the agents' open output sections (see
aimesh.stream.commit_barrier), so no commit lands between an agent's outputs and the table row
that records them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.types import TP
from typing_extensions import override

from aimesh.stream.commit_barrier import commit_barrier
from aimesh.stream.transport.mixin_base import ConsumerMixinBase


class BarrierCommits(ConsumerMixinBase):
    """Mixin for Faust's Consumer."""

    @override
    async def _commit_offsets(self, offsets: Mapping[TP, int], *args: Any, **kwargs: Any) -> bool:
        async with commit_barrier.exclusive():
            return bool(await super()._commit_offsets(offsets, *args, **kwargs))
