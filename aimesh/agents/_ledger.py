"""Which attempt of each cycle an agent has finished, so a redelivered message is skipped.

An attempt is prepared (the slow part: memory, the model), then delivered: its output sent and
the attempt marked finished in the table, together inside a commit-barrier section, so no offset
commit lands between the two (see `aimesh.stream.commit_barrier`). A crash before the commit
means doing the attempt again, which the agents downstream absorb; the reverse order could lose
the cycle.
Concurrent actors of one worker may hold two copies of one attempt at once, so attempts in
progress are tracked in memory as well (`_underway`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from aimesh.agents._underway import Underway
from aimesh.app import app, settings
from aimesh.stream.commit_barrier import commit_barrier
from aimesh.stream.durable_table import DurableTable
from aimesh.stream.telemetry import log_event

T = TypeVar("T")


class Ledger:
    """A table of the last finished attempt per cycle, plus the attempts in progress."""

    def __init__(self, name: str) -> None:
        self.table = cast(
            DurableTable, app.Table(name, default=int, partitions=settings.partitions)
        )
        self._underway = Underway()

    def done(self, cycle_id: str, attempt: int) -> bool:
        return self.table[cycle_id] >= attempt or (cycle_id, attempt) in self._underway

    async def once(
        self,
        agent: str,
        cycle_id: str,
        attempt: int,
        prepare: Callable[[], Awaitable[T]],
        deliver: Callable[[T], Awaitable[None]],
    ) -> T | None:
        """Prepare and deliver the attempt unless it is done or under way (then say so in
        telemetry and return None); return what was delivered."""
        if self.done(cycle_id, attempt):
            await log_event(agent, f"skipped redelivered attempt {attempt}", cycle_id=cycle_id)
            return None
        with self._underway.holding(cycle_id, attempt):
            output = await prepare()
            async with commit_barrier.section():
                await deliver(output)
                self.table[cycle_id] = attempt
                await self.table.written()
            return output
