"""Persistence: joins task, solution, verdict and review per attempt and archives them as CSV.

The in-flight join lives in a Faust table keyed by the root task id (co-partitioned with every
topic it reads), so it survives restarts and stays with the worker that owns the cycle. Rows are
appended once: the join marks what it wrote, and the archive itself refuses a repeated key.

The task comes with its solution (a Solution carries the task it answers, and the archive joins
both), not from `ai_topic`: a task without a solution makes no row, and reading `ai_topic` as well
cost a second consume and a second join write per attempt.
"""

from __future__ import annotations

from typing import Any

import faust
from faust import StreamT

from aimesh import services
from aimesh.agents._guard import handle
from aimesh.app import app, settings
from aimesh.archive import new_state
from aimesh.stream.telemetry import event
from aimesh.topics import failed_topic, reviews_topic, solutions_topic, verified_topic

AGENT = "persistence"

joins = app.Table("archive_join", default=new_state, partitions=settings.partitions)


async def record_part(part: str, record: faust.Record) -> None:
    """Add one part to its cycle's join (a solution brings its task) and write what it completes."""
    cycle_id = record.cycle_id
    joined = services.archive().add(joins[cycle_id], part, record.asdict())
    if not joined.changed:
        return
    joins[cycle_id] = joined.state
    if joined.finished:
        outcome, attempts = joined.finished["outcome"], joined.finished["attempts"]
        await event(AGENT, "cycle_archived", cycle_id=cycle_id, outcome=outcome, attempts=attempts)


async def _archive(part: str, stream: StreamT[Any]) -> None:
    async def on_record(record: faust.Record) -> None:
        await record_part(part, record)

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
