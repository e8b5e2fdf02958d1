"""The dump a stuck worker writes on SIGUSR1: every await a task sits in, and where its consumer
stands on each partition."""

from __future__ import annotations

import asyncio
import re

from aimesh.diagnostics import dump_tasks
from tests.conftest import json_key
from tests.kafka_io import produce
from tests.mesh_tasks import new_task


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


def test_a_running_worker_dumps_its_tasks_and_its_consumer_positions(worker, broker_url):
    task = new_task("[pass]")
    produce(broker_url, "ai_topic", (json_key(task.cycle_id), task.dumps()))
    worker.wait_cycle(task.cycle_id)
    text = worker.dump()
    assert "pending asyncio tasks" in text, worker.log_tail()
    assert re.search(r"consumer: flow_active=True .* recovery_completed=True", text), text[-3000:]
    assert re.search(r"ai_topic\[\d\] position=\d+ read=\S+ committed=\S+ highwater=\d+", text)
    assert re.search(r"ai_topic\[\d\] .* handed_out=\[\]", text)  # the cycle is finished
