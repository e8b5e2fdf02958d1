"""Keeps an offset commit from landing between an agent's outputs and its table write.

An agent that sends its outputs and then records in a table that it did so must have both or
neither committed: outputs without the record mean a replay sends them twice (a committed
duplicate even in exactly-once mode, where Faust's periodic commit takes whatever was produced so
far); the record without the outputs would lose them. Agents run such pairs inside `section()`;
the consumer commits inside `exclusive()`, which waits for open sections and holds new ones back.
State changes never await, so a cancelled waiter cannot leave the barrier shut.
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
        self._events: tuple[asyncio.Event, asyncio.Event] | None = None

    def _state(self) -> tuple[asyncio.Event, asyncio.Event]:
        """(no commit running, no section open); made on first use, in the worker's loop."""
        if self._events is None:
            no_commit, no_section = asyncio.Event(), asyncio.Event()
            no_commit.set()
            no_section.set()
            self._events = (no_commit, no_section)
        return self._events

    def describe(self) -> str:
        """One line for the worker's SIGUSR1 dump."""
        return f"commit barrier: open sections={self._open} committing={self._committing}"

    async def _wait_for_no_commit(self) -> None:
        no_commit, _ = self._state()
        while self._committing:
            await no_commit.wait()

    @asynccontextmanager
    async def section(self) -> AsyncIterator[None]:
        _, no_section = self._state()
        await self._wait_for_no_commit()
        self._open += 1
        no_section.clear()
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                no_section.set()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        no_commit, no_section = self._state()
        await self._wait_for_no_commit()
        self._committing = True
        no_commit.clear()
        try:
            while self._open:
                await no_section.wait()
            yield
        finally:
            self._committing = False
            no_commit.set()


commit_barrier = CommitBarrier()
