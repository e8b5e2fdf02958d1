"""Persistence: joins task, solution, verdict and review per attempt and archives them as CSV.

The in-flight join lives in a Faust table keyed by the root task id (co-partitioned with every
topic it reads), so it survives restarts and stays with the worker that owns the cycle. Rows are
appended once: the join marks what it wrote, and the archive itself refuses a repeated key.
"""

from __future__ import annotations

from typing import Any

import faust
from faust import StreamT

from aimesh.agents.guard import accepted
from aimesh.app import app, settings
from aimesh.archive import ATTEMPT_COLUMNS, CYCLE_COLUMNS, CsvArchive, CycleJoin
from aimesh.archive.join import new_state
from aimesh.telemetry import event, metric
from aimesh.topics import failed_topic, reviews_topic, solutions_topic, tasks_topic, verified_topic

AGENT = "persistence"

attempts_csv = CsvArchive(
    settings.tables_dir / "attempts.csv", ATTEMPT_COLUMNS, ("cycle_id", "attempt")
)
cycles_csv = CsvArchive(settings.tables_dir / "cycles.csv", CYCLE_COLUMNS, ("cycle_id",))

joins = app.Table("archive_join", default=new_state, partitions=settings.partitions)


async def record_part(part: str, record: faust.Record) -> None:
    """Add one part to its cycle's join and write whatever rows that completes."""
    cycle_id: str = record.cycle_id  # type: ignore[attr-defined]
    state: dict[str, Any] = joins[cycle_id]
    data = record.asdict()
    data.pop("task", None)
    if not CycleJoin.add(state, part, data["attempt"], data):
        return
    rows = CycleJoin.complete_attempts(state)
    if rows:
        attempts_csv.append(rows)
        CycleJoin.mark_written(state, rows)
    finished = CycleJoin.finished_cycle(state)
    if finished:
        cycles_csv.append([finished])
        state = CycleJoin.close(state)
        await event(AGENT, "cycle_archived", cycle_id=cycle_id, outcome=finished["outcome"])
        await metric(AGENT, "cycle_attempts", finished["attempts"], cycle_id=cycle_id)
    joins[cycle_id] = state


async def _archive(part: str, stream: StreamT[Any]) -> None:
    async for message in stream.events():
        if await accepted(AGENT, message):
            await record_part(part, message.value)


@app.agent(tasks_topic, name="persist_tasks")
async def persist_tasks(stream: StreamT[Any]) -> None:
    await _archive("task", stream)


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
