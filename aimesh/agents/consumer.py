"""Consumer: writes code for each task, helped by similar past failures and lessons from memory.

An attempt is marked handled only once its solution is delivered: a crash in between means the
task comes again and is solved twice, which the Sandbox and the archive absorb; the reverse
order could lose the cycle.
"""

from __future__ import annotations

from faust import StreamT

from aimesh import services, steps
from aimesh.agents.guard import handle
from aimesh.app import app, settings
from aimesh.records import Task
from aimesh.telemetry import event, log_event, metric
from aimesh.topics import solutions_topic, tasks_topic

AGENT = "consumer"

handled = app.Table("consumer_handled", default=int, partitions=settings.partitions)
# Concurrent actors of this worker may hold two copies of one attempt at once: the table only
# learns of an attempt once its solution is out, so attempts in progress are tracked here too.
_in_progress: set[tuple[str, int]] = set()


async def solve(task: Task) -> None:
    """Recall, ask for code, deliver the solution, then mark the attempt handled."""
    recalled = await steps.recall(services.memory(), task, settings.memory_k)
    if recalled.error:
        await event(AGENT, "memory_unavailable", cycle_id=task.cycle_id, error=recalled.error)
    elif recalled.memories:
        await metric(AGENT, "memories_recalled", len(recalled.memories), cycle_id=task.cycle_id)
    solution = await steps.solve(services.llm(), task, recalled.memories)
    await (await solutions_topic.send(key=task.cycle_id, value=solution))
    handled[task.cycle_id] = task.attempt
    if solution.model:
        await metric(AGENT, "llm_latency_ms", solution.latency_ms, cycle_id=task.cycle_id)
        await metric(AGENT, "completion_tokens", solution.completion_tokens, cycle_id=task.cycle_id)
    if solution.note:
        await event(AGENT, "no_code", cycle_id=task.cycle_id, note=solution.note[:300])
    await event(AGENT, "solution_sent", cycle_id=task.cycle_id, attempt=task.attempt)


async def on_task(task: Task) -> None:
    attempt = (task.cycle_id, task.attempt)
    if handled[task.cycle_id] >= task.attempt or attempt in _in_progress:
        await log_event(
            AGENT, f"skipped redelivered attempt {task.attempt}", cycle_id=task.cycle_id
        )
        return
    _in_progress.add(attempt)
    try:
        await solve(task)
    finally:
        _in_progress.discard(attempt)


@app.agent(tasks_topic, concurrency=settings.llm_concurrency)
async def consumer(stream: StreamT[Task]) -> None:
    async for message in stream.events():
        await handle(AGENT, message, on_task)
