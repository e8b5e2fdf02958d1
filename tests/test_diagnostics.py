"""The dump a stuck worker writes on SIGUSR1: every await a task sits in, and where its consumer
stands on each partition."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aimesh.stream.diagnostics import dump_tasks
from testbed.kafka_io import produce
from testbed.mesh import json_key
from testbed.mesh_tasks import new_task


async def _inner_wait(event: asyncio.Event) -> None:
    await event.wait()


async def _outer_wait(event: asyncio.Event) -> None:
    await _inner_wait(event)


async def _dump_of_stuck(waits: Callable[[asyncio.Event], Awaitable[None]]) -> str:
    """The dump's section on a task stuck in `waits` (released once the dump is taken)."""
    event = asyncio.Event()
    waiting = asyncio.create_task(waits(event), name="stuck-one")
    await asyncio.sleep(0.01)
    dump = dump_tasks()
    event.set()
    await waiting
    return dump[dump.index("--- stuck-one") :]


@asynccontextmanager
async def _entered_once(event: asyncio.Event) -> AsyncIterator[None]:
    await event.wait()
    yield


async def _in_async_with(event: asyncio.Event) -> None:
    async with _entered_once(event):
        pass


async def test_the_dump_shows_the_whole_chain_of_awaits():
    section = await _dump_of_stuck(_outer_wait)
    assert section.index("_outer_wait") < section.index("_inner_wait") < section.index(" wait")


async def test_the_chain_goes_on_through_an_async_context_manager():
    section = await _dump_of_stuck(_in_async_with)
    assert section.index("_in_async_with") < section.index("_entered_once") < section.index(" wait")


def test_a_running_worker_dumps_its_tasks_and_its_consumer_positions(worker, broker_url):
    task = new_task("[pass]")
    produce(broker_url, "ai_topic", (json_key(task.cycle_id), task.dumps()))
    worker.wait_cycle(task.cycle_id)
    text = worker.dump()
    assert "pending asyncio tasks" in text, worker.log_tail()
    assert re.search(r"consumer: flow_active=True .* recovery_completed=True", text), text[-3000:]
    assert re.search(r"ai_topic\[\d\] position=\d+ read=\S+ committed=\S+ highwater=\d+", text)
    assert re.search(r"ai_topic\[\d\] .* handed_out=\[\]", text)  # the cycle is finished
    assert re.search(r"recovery: in_recovery=False generation=\d+ .* active_remaining=\{\}", text)
    assert re.search(r"producer: in flight to brokers \[", text), text[-2000:]
    assert re.search(r"commit barrier: open sections=0 committing=(True|False)", text)
