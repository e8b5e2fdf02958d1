"""`aimesh export`: the archive's datasets written as JSONL and Parquet, with a dataset card.

Everything is built in memory and checked first; files are then written under temporary names
and renamed into place together, so a refused or failed export leaves no partial file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from aimesh.archive.dataset import DATASETS, PROVENANCE, SCHEMA, Dataset, Selection, build
from aimesh.archive.writer import CycleArchive

FORMATS = {
    "sft": [("sft", "jsonl")],
    "flat": [("sft_flat", "jsonl")],
    "repair": [("repair", "jsonl")],
    "preference": [("preference", "jsonl")],
    "parquet": [(name, "parquet") for name in DATASETS],
    "all": [(name, kind) for kind in ("jsonl", "parquet") for name in DATASETS],
}
DEFAULT_FORMAT = "sft"


class ExportError(ValueError):
    """Why nothing was written: an unreadable or empty archive, or nothing matched."""


def read(tables: Path, selection: Selection) -> Dataset:
    """The datasets of the archive in `tables`, as `selection` takes them."""
    archive = CycleArchive(tables)
    if not archive.attempts.path.is_file():
        raise ExportError(f"no archive in {tables} (no attempts.csv)")
    try:
        attempts, cycles = archive.attempts.read(), archive.cycles.read()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ExportError(f"cannot read the archive in {tables}: {exc}") from None
    if attempts.empty:
        raise ExportError(f"the archive in {tables} holds no attempt yet")
    return build(attempts, cycles, selection)


def check(dataset: Dataset, format_name: str) -> None:
    """Refuse an export that would write nothing of what was asked for."""
    if not dataset.solutions():
        reasons = ", ".join(f"{n} by {why}" for why, n in dataset.left_out.most_common())
        raise ExportError(
            f"no solution matches (left out: {reasons})"
            if reasons
            else "no solution to export: no finished cycle has passed"
        )
    wanted = {name for name, _ in FORMATS[format_name]}
    if not any(dataset.records[name] for name in wanted):
        raise ExportError(f"nothing to write for --format {format_name}: " + _empty(wanted))


def _empty(names: set[str]) -> str:
    why = {
        "repair": "no cycle passed after a fix",
        "preference": "no passing cycle has a failed attempt with other code",
    }
    return "; ".join(why.get(name, f"no {name} record") for name in sorted(names))


def jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def _parquet(name: str, records: Sequence[dict[str, Any]], path: Path) -> None:
    """The records as one Parquet file; an empty dataset still has its columns."""
    columns = [field for field, _, _ in (*SCHEMA[name], *PROVENANCE)]
    pd.DataFrame.from_records(list(records), columns=columns).to_parquet(path, index=False)


def planned(out: Path, format_name: str) -> list[Path]:
    """The files an export in `format_name` writes into `out`, the card last."""
    return [out / f"{name}.{kind}" for name, kind in FORMATS[format_name]] + [out / "README.md"]


def write(out: Path, dataset: Dataset, format_name: str, card: str) -> list[Path]:
    """Write the format's files and the card into `out`, all of them or none; then remove the
    files an earlier export wrote there in other formats, so the folder is this export."""
    out.mkdir(parents=True, exist_ok=True)
    temporary = []
    try:
        for path in planned(out, format_name):
            part = path.with_name(f".{path.name}.partial")
            temporary.append((part, path))
            if path.suffix == ".jsonl":
                part.write_bytes(jsonl(dataset.records[path.stem]))
            elif path.suffix == ".parquet":
                _parquet(path.stem, dataset.records[path.stem], part)
            else:
                part.write_text(card, encoding="utf-8")
    except BaseException:
        for part, _ in temporary:
            part.unlink(missing_ok=True)
        raise
    for part, path in temporary:
        os.replace(part, path)
    written = [path for _, path in temporary]
    for stale in set(planned(out, "all")) - set(written):  # an earlier export's other files
        stale.unlink(missing_ok=True)
    return written
