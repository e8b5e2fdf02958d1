"""Consumer: writes code for each task, helped by similar past failures and lessons from memory."""

from __future__ import annotations

from faust import StreamT

from aimesh import services
from aimesh.agents._guard import handle
from aimesh.agents._ledger import Ledger
from aimesh.app import app, settings
from aimesh.cycle import steps
from aimesh.cycle.records import Solution, Task
from aimesh.stream.telemetry import event, metric
from aimesh.topics import solutions_topic, tasks_topic

AGENT = "consumer"

ledger = Ledger("consumer_handled")


async def solve(task: Task) -> Solution:
    """Recall similar past experiences, then ask the model for code."""
    recalled = await steps.recall(services.memory(), task, settings.memory_k)
    if recalled.error:
        await event(AGENT, "memory_unavailable", cycle_id=task.cycle_id, error=recalled.error)
    return await steps.solve(services.llm(), task, recalled.memories, settings.fix_model)


async def deliver(solution: Solution) -> None:
    await (await solutions_topic.send(key=solution.cycle_id, value=solution))


async def report(solution: Solution) -> None:
    """One record per attempt (see aimesh.stream.telemetry): the call's latency with its figures,
    and an event when the model gave no usable code."""
    cycle_id, attempt, recalled = solution.cycle_id, solution.attempt, len(solution.memories)
    if solution.model:
        await metric(
            AGENT, "llm_latency_ms", solution.latency_ms, cycle_id=cycle_id, attempt=attempt,
            completion_tokens=solution.completion_tokens, memories_recalled=recalled,
        )  # fmt: skip
    if solution.note:
        kind = "llm_error" if not solution.model else "no_code"
        await event(AGENT, kind, cycle_id=cycle_id, attempt=attempt, note=solution.note[:300])


async def on_task(task: Task) -> None:
    solution = await ledger.once(AGENT, task.cycle_id, task.attempt, lambda: solve(task), deliver)
    if solution is not None:
        await report(solution)


@app.agent(tasks_topic, concurrency=settings.llm_concurrency)
async def consumer(stream: StreamT[Task]) -> None:
    async for message in stream.events():
        await handle(AGENT, message, on_task)
