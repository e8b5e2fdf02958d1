"""The archive of a run: the per-cycle join feeding the two CSV files, in one call per part."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimesh.archive.csv_archive import CsvArchive
from aimesh.archive.join import ATTEMPT_COLUMNS, CYCLE_COLUMNS, CycleJoin


@dataclass(frozen=True)
class Joined:
    """The cycle's new join state; whether the part changed it; the cycle row, if it ended."""

    state: dict[str, Any]
    changed: bool
    finished: dict[str, Any] | None = None


class CycleArchive:
    """`attempts.csv` and `cycles.csv` under one folder, fed part by part."""

    def __init__(self, tables_dir: Path) -> None:
        self.attempts = CsvArchive(
            tables_dir / "attempts.csv", ATTEMPT_COLUMNS, ("cycle_id", "attempt")
        )
        self.cycles = CsvArchive(tables_dir / "cycles.csv", CYCLE_COLUMNS, ("cycle_id",))

    def add(self, state: dict[str, Any], part: str, data: dict[str, Any]) -> Joined:
        """Join one part and write the rows it completes; a duplicate changes nothing. A part
        that carries its task (a Solution does) brings the task part with it, so the task
        needs no part of its own."""
        task = data.get("task")
        data = {name: value for name, value in data.items() if name != "task"}
        changed = CycleJoin.add(state, part, data["attempt"], data)
        if task is not None:
            task = task.asdict() if hasattr(task, "asdict") else task  # a record, or plain data
            changed = CycleJoin.add(state, "task", data["attempt"], task) or changed
        if not changed:
            return Joined(state, changed=False)
        rows = CycleJoin.complete_attempts(state)
        if rows:
            self.attempts.append(rows)
            CycleJoin.mark_written(state, rows)
        finished = CycleJoin.finished_cycle(state)
        if finished is None:
            return Joined(state, changed=True)
        self.cycles.append([finished])
        return Joined(CycleJoin.close(state), changed=True, finished=finished)
