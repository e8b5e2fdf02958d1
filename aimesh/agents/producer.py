"""Producer: invents tasks with the LLM, or reads them from a JSONL file, onto `ai_topic`.

Runs on the leader only, one task per tick, up to AIMESH_MAX_TASKS, while fewer than
AIMESH_MAX_IN_FLIGHT cycles are open (aimesh/in_flight.py). Task ids from a file are
derived from the file, so a restarted leader re-sends the same ids and the idempotent agents
downstream ignore what they have already done.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

from aimesh import prompts, services
from aimesh.app import app, settings
from aimesh.archive import CycleArchive
from aimesh.in_flight import InFlightWindow
from aimesh.llm.client import LLMError
from aimesh.plain_send import send_plain
from aimesh.records import Task, now
from aimesh.tasksource import HUMANEVAL, TaskSpec, invented_task, read_tasks
from aimesh.telemetry import event, log_event, metric
from aimesh.topics import tasks_topic

AGENT = "producer"
BRAINSTORM_TRIES = 5
_numbers = itertools.count(1)
_sent = 0
_done = False
_file_tasks: Iterator[TaskSpec] | None = None
_bad_lines: list[str] = []
_archive = CycleArchive(settings.tables_dir)
_window = InFlightWindow(
    settings.max_in_flight,
    lambda: _archive.cycles.read()["cycle_id"],
    # far longer than any cycle: every attempt may wait out its LLM timeout twice (code, review)
    give_up_after_s=2 * settings.llm_timeout * (settings.max_fixes + 1),
)


async def _brainstorm() -> TaskSpec | None:
    """Ask the model for a task a few times; None (an event says why) when none is usable."""
    for _ in range(BRAINSTORM_TRIES):
        try:
            result = await services.llm().chat(
                prompts.brainstorm_messages(next(_numbers)),
                schema=prompts.TASK_SCHEMA,
                max_tokens=300,
                temperature=0.7,
            )
            await metric(
                AGENT, "llm_latency_ms", result.latency_ms, tokens=result.completion_tokens
            )
            return invented_task(result.json(), f"t-{uuid.uuid4().hex[:12]}")
        except (LLMError, ValueError) as exc:
            await event(AGENT, "brainstorm_failed", error=f"{type(exc).__name__}: {exc}"[:500])
    return None


def _next_from_file() -> TaskSpec | None:
    global _file_tasks
    if _file_tasks is None:
        _file_tasks = read_tasks(settings.tasks or "", on_error=lambda e: _bad_lines.append(str(e)))
    return next(_file_tasks, None)


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
    global _sent, _done
    if _done:
        return
    if settings.max_tasks is not None and _sent >= settings.max_tasks:
        _done = True
        await log_event(AGENT, f"produced {_sent} tasks, the configured maximum")
        return
    try:
        room = _window.has_room()
    except Exception as exc:  # e.g. the archive read mid-write: try again on the next tick
        await event(AGENT, "in_flight_unknown", error=f"{type(exc).__name__}: {exc}"[:300])
        return
    while _window.expired:
        await event(AGENT, "cycle_not_finished", cycle_id=_window.expired.pop(0))
    if not room:
        return
    spec = _next_from_file() if settings.tasks else await _brainstorm()
    while _bad_lines:
        await event(AGENT, "bad_task_line", error=_bad_lines.pop(0))
    if spec is None:
        if settings.tasks:
            _done = True
            await log_event(AGENT, f"task file exhausted after {_sent} tasks")
        return
    task = to_task(spec, _source_label())
    await send_plain(tasks_topic, task.cycle_id, task, delivered=True)  # no input to commit with
    _window.started(task.cycle_id)
    _sent += 1
    await event(AGENT, "task_created", cycle_id=task.cycle_id, title=task.title, number=_sent)
