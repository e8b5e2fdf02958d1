"""Producer: invents tasks with the LLM, or reads them from a JSONL file, onto `ai_topic`.

Runs on the leader only, one task per tick, up to AIMESH_MAX_TASKS, while fewer than
AIMESH_MAX_IN_FLIGHT cycles are open (aimesh/agents/_in_flight.py). Task ids from a file are
derived from the file, so a restarted leader re-sends the same ids and the idempotent agents
downstream ignore what they have already done.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

from aimesh import services
from aimesh.agents._in_flight import InFlightWindow
from aimesh.app import app, settings
from aimesh.cycle import prompts, steps
from aimesh.cycle.records import Task, now
from aimesh.cycle.tasksource import HUMANEVAL, TaskSpec, invented_task, read_tasks
from aimesh.llm.client import LLMError
from aimesh.stream.plain_send import send_plain
from aimesh.stream.telemetry import event, log_event, metric
from aimesh.topics import tasks_topic

AGENT = "producer"
BRAINSTORM_TRIES = 5


class Production:
    """What this worker's Producer has done: tasks sent, whether it is done, the task file
    being read and its bad lines, and the cycles it keeps open (aimesh/agents/_in_flight.py)."""

    def __init__(self) -> None:
        self.sent = 0
        self.done = False
        self.numbers = itertools.count(1)  # of brainstorm prompts
        self.bad_lines: list[str] = []
        self._file_tasks: Iterator[TaskSpec] | None = None
        self.window = InFlightWindow(
            settings.max_in_flight,
            lambda: services.archive().cycles.read()["cycle_id"],
            # far longer than any cycle: every attempt may wait out its LLM timeout twice
            # (code, review)
            give_up_after_s=2 * settings.llm_timeout * (settings.max_fixes + 1),
        )

    def next_from_file(self) -> TaskSpec | None:
        if self._file_tasks is None:
            self._file_tasks = read_tasks(settings.tasks or "", on_error=self._bad_line)
        return next(self._file_tasks, None)

    def _bad_line(self, error: Exception) -> None:
        self.bad_lines.append(str(error))


production = Production()


async def _brainstorm() -> TaskSpec | None:
    """Ask the model for a task a few times; None (an event says why) when none is usable."""
    for _ in range(BRAINSTORM_TRIES):
        try:
            result = await services.llm().chat(
                prompts.brainstorm_messages(next(production.numbers)),
                schema=prompts.TASK_SCHEMA,
                max_tokens=450,  # a solution and four tests in JSON
                temperature=0.7,
            )
            await metric(
                AGENT, "llm_latency_ms", result.latency_ms, tokens=result.completion_tokens
            )
            data = result.json()
            spec = invented_task(data, f"t-{uuid.uuid4().hex[:12]}")
            spec, dropped = await steps.agreed_tests(  # invented_task checked it is a dict
                spec, str(data.get("solution", "")), services.limits(), services.sandbox_pool()
            )
            if dropped:
                await metric(AGENT, "tests_dropped", dropped, task=spec.id)
            return spec
        except (LLMError, ValueError) as exc:
            await event(AGENT, "brainstorm_failed", error=f"{type(exc).__name__}: {exc}"[:500])
    return None


def _source_label() -> str:
    if not settings.tasks:
        return "llm"
    return HUMANEVAL if settings.tasks == HUMANEVAL else "file"


def to_task(spec: TaskSpec, source: str) -> Task:
    """The first attempt of a new cycle; its id is the cycle's root id for its whole life.

    `aimesh up` sets a run id, so running the same task file again makes new cycles; a plain
    worker keeps the file's ids, so a restarted leader re-sends ids the mesh already knows.
    """
    return Task(
        cycle_id=f"{settings.run_id}:{spec.id}" if settings.run_id else spec.id,
        attempt=1,
        title=spec.title,
        description=spec.description,
        tests=spec.tests,
        function_name=spec.function_name,
        signature=spec.signature,
        entry_point=spec.entry_point,
        preamble=spec.preamble,
        tests_hidden=spec.tests_hidden,
        prompt=prompts.first_prompt(spec),
        source=source,
        limits=dict(spec.limits),
        created_at=now(),
    )


@app.timer(interval=settings.task_interval, on_leader=True)
async def produce() -> None:
    state = production
    if state.done:
        return
    if settings.max_tasks is not None and state.sent >= settings.max_tasks:
        state.done = True
        await log_event(AGENT, f"produced {state.sent} tasks, the configured maximum")
        return
    try:
        room = state.window.has_room()
    except Exception as exc:  # e.g. the archive read mid-write: try again on the next tick
        await event(AGENT, "in_flight_unknown", error=f"{type(exc).__name__}: {exc}"[:300])
        return
    while state.window.expired:
        await event(AGENT, "cycle_not_finished", cycle_id=state.window.expired.pop(0))
    if not room:
        return
    spec = state.next_from_file() if settings.tasks else await _brainstorm()
    while state.bad_lines:
        await event(AGENT, "bad_task_line", error=state.bad_lines.pop(0))
    if spec is None:
        if settings.tasks:
            state.done = True
            await log_event(AGENT, f"task file exhausted after {state.sent} tasks")
        return
    task = to_task(spec, _source_label())
    await send_plain(tasks_topic, task.cycle_id, task, delivered=True)  # no input to commit with
    state.window.started(task.cycle_id)
    state.sent += 1
    await event(AGENT, "task_created", cycle_id=task.cycle_id, title=task.title, number=state.sent)
