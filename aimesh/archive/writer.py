"""The archive of a run: the per-cycle join feeding the two CSV files, in one call per part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aimesh.archive.csv_archive import CsvArchive
from aimesh.archive.join import ATTEMPT_COLUMNS, CYCLE_COLUMNS, CycleJoin


class CycleArchive:
    """`attempts.csv` and `cycles.csv` under one folder, fed part by part."""

    def __init__(self, tables_dir: Path) -> None:
        self.attempts = CsvArchive(
            tables_dir / "attempts.csv", ATTEMPT_COLUMNS, ("cycle_id", "attempt")
        )
        self.cycles = CsvArchive(tables_dir / "cycles.csv", CYCLE_COLUMNS, ("cycle_id",))

    def add(
        self, state: dict[str, Any], part: str, data: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Join one part; write the rows it completes. Returns the new state, and the cycle row
        when this part finished the cycle."""
        if not CycleJoin.add(state, part, data["attempt"], data):
            return state, None
        rows = CycleJoin.complete_attempts(state)
        if rows:
            self.attempts.append(rows)
            CycleJoin.mark_written(state, rows)
        finished = CycleJoin.finished_cycle(state)
        if finished:
            self.cycles.append([finished])
            state = CycleJoin.close(state)
        return state, finished
