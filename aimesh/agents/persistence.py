"""Persistence: joins task, solution, verdict and review per attempt and archives them as CSV.

The in-flight join lives in a Faust table keyed by the root task id (co-partitioned with every
topic it reads), so it survives restarts and stays with the worker that owns the cycle. Rows are
appended once: the join marks what it wrote, and the archive itself refuses a repeated key.

The task comes with its solution (a Solution carries the task it answers), not from `ai_topic`: a
task without a solution makes no row, and reading `ai_topic` as well cost a second consume and a
second join write per attempt.
"""

from __future__ import annotations

from typing import Any

import faust
from faust import StreamT

from aimesh import services
from aimesh.agents._guard import handle
from aimesh.app import app, settings
from aimesh.archive import new_state
from aimesh.cycle.records import Solution
from aimesh.stream.telemetry import event
from aimesh.topics import failed_topic, reviews_topic, solutions_topic, verified_topic

AGENT = "persistence"

joins = app.Table("archive_join", default=new_state, partitions=settings.partitions)


async def record_parts(cycle_id: str, parts: list[tuple[str, dict[str, Any]]]) -> None:
    """Add parts to their cycle's join, write whatever rows they complete, store the join once."""
    state, changed, finished = joins[cycle_id], False, None
    for part, data in parts:
        joined = services.archive().add(state, part, data)
        state, changed = joined.state, changed or joined.changed
        finished = finished or joined.finished
    if not changed:
        return
    joins[cycle_id] = state
    if finished:
        outcome, attempts = finished["outcome"], finished["attempts"]
        await event(AGENT, "cycle_archived", cycle_id=cycle_id, outcome=outcome, attempts=attempts)


def parts_of(part: str, record: faust.Record) -> list[tuple[str, dict[str, Any]]]:
    """The join parts one record holds: a solution holds its task too."""
    if isinstance(record, Solution):
        return [("task", record.task.asdict()), ("solution", record.asdict())]
    return [(part, record.asdict())]


async def _archive(part: str, stream: StreamT[Any]) -> None:
    async def on_record(record: faust.Record) -> None:
        await record_parts(record.cycle_id, parts_of(part, record))

    async for message in stream.events():
        await handle(AGENT, message, on_record)


@app.agent(solutions_topic, name="persist_solutions")
async def persist_solutions(stream: StreamT[Any]) -> None:
    await _archive("solution", stream)


@app.agent(verified_topic, name="persist_passes")
async def persist_passes(stream: StreamT[Any]) -> None:
    await _archive("verdict", stream)


@app.agent(failed_topic, name="persist_failures")
async def persist_failures(stream: StreamT[Any]) -> None:
    await _archive("verdict", stream)


@app.agent(reviews_topic, name="persist_reviews")
async def persist_reviews(stream: StreamT[Any]) -> None:
    await _archive("review", stream)
