"""The commit barrier: a commit never lands inside an agent's output section."""

from __future__ import annotations

import asyncio

from aimesh.stream.commit_barrier import CommitBarrier


async def test_a_commit_waits_for_open_sections_and_holds_new_ones_back():
    barrier, order = CommitBarrier(), []

    async def agent(name: str, hold: float) -> None:
        async with barrier.section():
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    async def commit() -> None:
        async with barrier.exclusive():
            order.append("commit in")
            await asyncio.sleep(0.05)
            order.append("commit out")

    first = asyncio.create_task(agent("a", 0.1))
    await asyncio.sleep(0.01)
    committing = asyncio.create_task(commit())
    await asyncio.sleep(0.01)
    late = asyncio.create_task(agent("b", 0))
    await asyncio.gather(first, committing, late)
    assert order == ["a in", "a out", "commit in", "commit out", "b in", "b out"]


async def test_sections_run_side_by_side_without_a_commit():
    barrier, inside = CommitBarrier(), []

    async def agent() -> None:
        async with barrier.section():
            inside.append(1)
            await asyncio.sleep(0.02)
            assert len(inside) == 3  # all three are in at once

    await asyncio.gather(agent(), agent(), agent())


async def test_a_cancelled_commit_leaves_the_barrier_open():
    barrier = CommitBarrier()
    entered = asyncio.Event()

    async def long_section() -> None:
        async with barrier.section():
            entered.set()
            await asyncio.sleep(0.2)

    async def commit() -> None:
        async with barrier.exclusive():
            pass

    holder = asyncio.create_task(long_section())
    await entered.wait()
    waiting = asyncio.create_task(commit())
    await asyncio.sleep(0.02)
    waiting.cancel()  # Faust may cancel a commit that waits
    await asyncio.gather(waiting, return_exceptions=True)
    async with barrier.section():  # not held back by the cancelled commit
        pass
    await holder
    await asyncio.wait_for(commit(), 1)
