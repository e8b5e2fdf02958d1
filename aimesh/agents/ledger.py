"""Which attempt of each cycle an agent has finished, so a redelivered message is skipped.

The table learns of an attempt only once the agent's output is delivered (a crash in between
means doing the attempt twice, which the agents downstream absorb; the reverse order could lose
the cycle). Concurrent actors of one worker may hold two copies of one attempt at once, so
attempts in progress are tracked in memory as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aimesh.app import app, settings
from aimesh.telemetry import log_event


class Ledger:
    """A table of the last finished attempt per cycle, plus the attempts in progress."""

    def __init__(self, name: str) -> None:
        self.table = app.Table(name, default=int, partitions=settings.partitions)
        self._in_progress: set[tuple[str, int]] = set()

    def done(self, cycle_id: str, attempt: int) -> bool:
        return self.table[cycle_id] >= attempt or (cycle_id, attempt) in self._in_progress

    @asynccontextmanager
    async def working_on(self, cycle_id: str, attempt: int) -> AsyncIterator[None]:
        """Claim the attempt while the body runs; mark it finished if the body returns."""
        self._in_progress.add((cycle_id, attempt))
        try:
            yield
            self.table[cycle_id] = attempt
        finally:
            self._in_progress.discard((cycle_id, attempt))

    async def once(
        self, agent: str, cycle_id: str, attempt: int, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `work` unless this attempt is done or under way; say so in telemetry if it is."""
        if self.done(cycle_id, attempt):
            await log_event(agent, f"skipped redelivered attempt {attempt}", cycle_id=cycle_id)
            return
        async with self.working_on(cycle_id, attempt):
            await work()
