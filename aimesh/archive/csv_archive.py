"""Append-only CSV files that refuse a second row for the same key.

Several workers may append to the same file, and Kafka delivers at least once, so the archive is
its own last line of defence: under an exclusive file lock it reads whatever rows were added
since it last looked, and skips a row whose key is already there.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, header: bool) -> str:
    """Rows as CSV, as pandas' `to_csv` writes them (it uses this module too), without building
    a DataFrame per append: that was 5% of a worker's time under bench/mesh_throughput.py.

    A missing value or NaN is an empty cell. A row with a carriage return in a cell is quoted
    whole: the csv module leaves a lone `\r` unquoted when lines end in `\n`, and a reader then
    takes it for the end of the row.
    """
    out = io.StringIO()
    plain = csv.writer(out, lineterminator="\n")
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if header:
        plain.writerow(columns)
    for row in rows:
        cells = [_cell(row.get(name)) for name in columns]
        carriage = any(isinstance(cell, str) and "\r" in cell for cell in cells)
        (quoted if carriage else plain).writerow(cells)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


class CsvArchive:
    """One CSV file with a fixed column list, read through pandas, header exactly once."""

    def __init__(self, path: Path, columns: Sequence[str], key: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)
        self.key = list(key)
        self._seen: set[tuple[str, ...]] = set()
        self._read_upto = 0
        self._frame: tuple[tuple[int, int], pd.DataFrame] | None = None

    def _key_of(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(row[name]) for name in self.key)

    def _catch_up(self, handle: Any) -> None:
        """Learn the keys of rows appended (by anyone) since the last look.

        Rows are only ever appended in whole chunks under the lock, so the last offset read is
        always a row boundary and only the new tail needs parsing.
        """
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        if self._read_upto == 0 and size and not self._header_matches(handle):
            self._move_aside(handle)
            size = 0
        if size < self._read_upto:
            self._seen.clear()
            self._read_upto = 0
        if size == self._read_upto:
            return
        handle.seek(self._read_upto)
        tail = io.StringIO(handle.read().decode("utf-8"), newline="")
        fieldnames = None if self._read_upto == 0 else self.columns
        for row in csv.DictReader(tail, fieldnames=fieldnames):
            self._seen.add(tuple(row.get(name) or "" for name in self.key))
        self._read_upto = size

    def _header_matches(self, handle: Any) -> bool:
        handle.seek(0)
        header = next(csv.reader([handle.readline().decode("utf-8")]), [])
        return header == self.columns

    def _move_aside(self, handle: Any) -> None:
        """A file written with other columns (an older version) keeps its rows under a new
        name; this file starts again, so no row lands under the wrong header."""
        aside = self.path.with_name(f"{self.path.stem}.{time.strftime('%Y%m%d-%H%M%S')}.csv")
        handle.seek(0)
        aside.write_bytes(handle.read())
        handle.truncate(0)
        logger.warning("%s had other columns; its rows are kept in %s", self.path, aside)

    def append(self, rows: Sequence[dict[str, Any]]) -> int:
        """Append the rows whose key is new; return how many were written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._catch_up(handle)
                fresh, keys = [], set()
                for row in rows:
                    key = self._key_of(row)
                    if key not in self._seen and key not in keys:
                        keys.add(key)
                        fresh.append(row)
                if not fresh:
                    return 0
                text = csv_text(fresh, self.columns, header=self._read_upto == 0)
                handle.seek(0, io.SEEK_END)
                handle.write(text.encode("utf-8"))
                handle.flush()
                self._seen |= keys
                self._read_upto = handle.tell()
                return len(fresh)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> pd.DataFrame:
        """The whole file as a DataFrame (empty, with the columns, before the first row).

        Read under a shared lock, so a reader while a run goes on (the web views, an export)
        never sees half of an append. Parsed again only when the file changed: the web views ask
        every few seconds.
        """
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return pd.DataFrame(columns=self.columns)
        version = (stat.st_mtime_ns, stat.st_size)
        if self._frame is None or self._frame[0] != version:
            with open(self.path, "rb") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                try:
                    stat = os.fstat(handle.fileno())
                    data = handle.read()
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            frame = (
                pd.read_csv(
                    io.BytesIO(data), keep_default_na=False, dtype=dict.fromkeys(self.key, str)
                )
                if data
                else pd.DataFrame(columns=self.columns)
            )
            self._frame = ((stat.st_mtime_ns, stat.st_size), frame)
        return self._frame[1]
