"""A Faust table whose writes can be awaited until their changelog records are sent.

Faust queues a table write's changelog record in the producer's buffer and sends it later. In
exactly-once mode a commit does not flush that buffer first, so an agent's output could be
committed in one transaction and the table row recording it in the next; a crash in between
would replay the output. Agents await `written()` inside their commit-barrier section, so both
are sent before any commit can start.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage
from typing_extensions import override


class DurableTable(faust.Table):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: set[FutureMessage] = set()

    @override
    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        if not sent.done():
            self._unsent.add(sent)
            sent.add_done_callback(self._unsent.discard)
        return sent

    async def written(self) -> None:
        """Wait until every changelog record written so far has reached the broker."""
        if self._unsent:
            await asyncio.gather(*list(self._unsent))
