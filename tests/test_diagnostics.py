"""The task dump a stuck worker writes on SIGUSR1 names every await a task sits in."""

from __future__ import annotations

import asyncio

from aimesh.diagnostics import dump_tasks


async def _inner_wait(event: asyncio.Event) -> None:
    await event.wait()


async def _outer_wait(event: asyncio.Event) -> None:
    await _inner_wait(event)


async def test_the_dump_shows_the_whole_chain_of_awaits():
    event = asyncio.Event()
    waiting = asyncio.create_task(_outer_wait(event), name="stuck-one")
    await asyncio.sleep(0.01)
    dump = dump_tasks()
    event.set()
    await waiting
    section = dump[dump.index("--- stuck-one") :]
    assert section.index("_outer_wait") < section.index("_inner_wait") < section.index(" wait")
