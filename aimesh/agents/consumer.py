"""Consumer: writes code for each task, helped by similar past failures and lessons from memory."""

from __future__ import annotations

from typing import Any

from faust import StreamT

from aimesh import prompts, services
from aimesh.agents.guard import accepted
from aimesh.app import app, settings
from aimesh.codeextract import extract_code
from aimesh.llm.client import LLMError
from aimesh.records import Solution, Task, now
from aimesh.telemetry import event, log_event, metric
from aimesh.topics import solutions_topic, tasks_topic

AGENT = "consumer"

handled = app.Table("consumer_handled", default=int, partitions=settings.partitions)


async def _recall(task: Task) -> list[str]:
    """Memories near this task's error (for a fix) or its description; none if memory fails."""
    query = task.previous_error or f"{task.title}\n{task.description}"
    try:
        found = await services.memory().recall(query, settings.memory_k)
    except Exception as exc:
        await event(AGENT, "memory_unavailable", cycle_id=task.cycle_id, error=str(exc)[:300])
        return []
    if found:
        await metric(AGENT, "memories_recalled", len(found), cycle_id=task.cycle_id)
    return [memory.as_prompt() for memory in found]


async def solve(task: Task) -> Solution:
    """Ask the model for code; an unreachable model or an answer without code is a value, too."""
    memories = await _recall(task)
    messages = prompts.solve_messages(task.prompt or task.description, memories)
    fields: dict[str, Any] = {"code": "", "note": ""}
    try:
        result = await services.llm().chat(messages, max_tokens=512)
    except LLMError as exc:
        fields["note"] = f"LLM error: {exc}"
        await event(AGENT, "llm_error", cycle_id=task.cycle_id, error=str(exc)[:300])
    else:
        fields.update(
            code=extract_code(result.text, task.function_name or task.entry_point),
            model=result.model,
            latency_ms=result.latency_ms,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
        if not fields["code"]:
            fields["note"] = f"no Python code in the answer: {result.text[:300]!r}"
        await metric(AGENT, "llm_latency_ms", result.latency_ms, cycle_id=task.cycle_id)
        await metric(AGENT, "completion_tokens", result.completion_tokens, cycle_id=task.cycle_id)
    return Solution(
        cycle_id=task.cycle_id,
        attempt=task.attempt,
        task=task,
        memories=memories,
        created_at=now(),
        **fields,
    )


@app.agent(tasks_topic)
async def consumer(stream: StreamT[Task]) -> None:
    async for message in stream.events():
        task: Task = message.value
        if not await accepted(AGENT, message):
            continue
        if handled[task.cycle_id] >= task.attempt:
            await log_event(
                AGENT, f"skipped redelivered attempt {task.attempt}", cycle_id=task.cycle_id
            )
            continue
        solution = await solve(task)
        handled[task.cycle_id] = task.attempt
        await solutions_topic.send(key=task.cycle_id, value=solution)
        await event(AGENT, "solution_sent", cycle_id=task.cycle_id, attempt=task.attempt)
