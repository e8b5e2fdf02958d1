"""Keeps an offset commit from landing between an agent's outputs and its table write.

An agent that sends its outputs and then records in a table that it did so must have both or
neither committed: outputs without the record mean a replay sends them twice (a committed
duplicate even in exactly-once mode, where Faust's periodic commit takes whatever was produced so
far); the record without the outputs would lose them. Agents run such pairs inside `section()`;
the consumer commits inside `exclusive()`, which waits for open sections and holds new ones back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class CommitBarrier:
    """A readers-writer lock: many short agent sections at once, or one commit."""

    def __init__(self) -> None:
        self._open = 0
        self._committing = False
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        # Created on first use, inside the worker's running loop.
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    @asynccontextmanager
    async def section(self) -> AsyncIterator[None]:
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: not self._committing)
            self._open += 1
        try:
            yield
        finally:
            async with changed:
                self._open -= 1
                changed.notify_all()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: not self._committing)
            self._committing = True
            await changed.wait_for(lambda: self._open == 0)
        try:
            yield
        finally:
            async with changed:
                self._committing = False
                changed.notify_all()


commit_barrier = CommitBarrier()
