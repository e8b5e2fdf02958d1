"""The CSV archive: one row per attempt and one per finished cycle, each written exactly once."""

from aimesh.archive.csv_archive import CsvArchive
from aimesh.archive.join import ATTEMPT_COLUMNS, CYCLE_COLUMNS, CycleJoin, new_state
from aimesh.archive.writer import CycleArchive

__all__ = [
    "ATTEMPT_COLUMNS",
    "CYCLE_COLUMNS",
    "CsvArchive",
    "CycleArchive",
    "CycleJoin",
    "new_state",
]
