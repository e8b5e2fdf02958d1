"""The dataset card written beside an export: what is in it, how it was chosen, how to load it.

Its front matter names each file as a configuration, so `datasets.load_dataset(FOLDER, NAME)`
finds them; `load_dataset("json", data_files=...)` and `pandas` need nothing from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from aimesh.archive.dataset import DATASETS, PROVENANCE, SCHEMA, Dataset, Selection

TITLE = "AI-Mesh: verified, reviewed Python solutions"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _front_matter(files: Sequence[Path]) -> list[str]:
    lines = ["---", "configs:"]
    for name in DATASETS:
        mine = [f.name for f in files if f.stem == name and f.suffix == ".jsonl"]
        mine = mine or [f.name for f in files if f.stem == name]
        if mine:
            lines += [f"- config_name: {name}", f"  data_files: {mine[0]}"]
    return [*lines, "---", ""]


def _archive_figures(dataset: Dataset) -> list[str]:
    attempts, cycles = dataset.attempts, dataset.cycles
    statuses = sorted({str(a["status"]) for a in attempts})
    source_of = {str(c["cycle_id"]): str(c["source"]) for c in cycles}
    by_source: Counter[tuple[str, str]] = Counter(
        (source_of[str(a["cycle_id"])], str(a["status"])) for a in attempts
    )
    sources = sorted({source for source, _ in by_source})
    lines = ["### Attempts by source and status", ""]
    lines += _table(
        ["source", *statuses, "all"],
        [
            [s, *(by_source[(s, st)] for st in statuses), sum(by_source[(s, x)] for x in statuses)]
            for s in sources
        ],
    )
    models: Counter[str] = Counter(str(a["model"]) or "(none)" for a in attempts)
    passed_by_model: Counter[str] = Counter(
        str(a["model"]) or "(none)" for a in attempts if str(a["status"]) == "passed"
    )
    lines += ["", "### Attempts by model", ""]
    lines += _table(
        ["model", "attempts", "passed", "pass rate"],
        [[m, n, passed_by_model[m], _rate(passed_by_model[m], n)] for m, n in models.items()],
    )
    lines += ["", "### Pass rates of finished cycles", ""]
    rows = []
    for source in sources:
        mine = [c for c in cycles if str(c["source"]) == source]
        passed = [c for c in mine if str(c["outcome"]) == "passed"]
        first = [c for c in passed if int(c["attempts"]) == 1]
        rows.append(
            [source, len(mine), _rate(len(first), len(mine)), _rate(len(passed), len(mine))]
        )
    lines += _table(["source", "cycles", "passed first try", "passed in the end"], rows)
    return lines


def _schema() -> list[str]:
    lines = []
    for name in DATASETS:
        lines += [f"### {name}", ""]
        lines += _table(["field", "type", "meaning"], SCHEMA[name])
        lines.append("")
    lines.append("Every record then carries its provenance:")
    lines.append("")
    lines += _table(["field", "type", "meaning"], PROVENANCE)
    return lines


def card(
    dataset: Dataset, selection: Selection, tables: Path, files: Sequence[Path], exported_at: float
) -> str:
    """The card's Markdown, front matter first."""
    written = {f.stem for f in files}
    lines = _front_matter(files)
    lines += [
        f"# {TITLE}",
        "",
        f"Exported by `aimesh export` from the archive in `{tables.name or tables}` at "
        f"{pd.Timestamp(exported_at, unit='s', tz='UTC').isoformat(timespec='seconds')}. "
        "Every solution passed its task's tests in the AI-Mesh sandbox, judged in the split "
        "mode: the tests ran in a process of their own, out of the program's reach.",
        "",
        "## Records",
        "",
    ]
    lines += _table(
        ["dataset", "records", "duplicates dropped", "written"],
        [
            [n, len(dataset.records[n]), dataset.duplicates[n], "yes" if n in written else "no"]
            for n in DATASETS
        ],
    )
    lines += ["", "## How they were chosen", ""]
    lines += [f"- {line}" for line in selection.described()]
    lines.append("- duplicates: dropped by the sha256 of the normalized code, the first kept")
    for why, count in dataset.left_out.most_common():
        lines.append(f"- left out by {why}: {count} passing cycle(s)")
    lines += [
        "",
        "## The archive read",
        "",
        f"{len(dataset.cycles)} finished cycles, {len(dataset.attempts)} attempts; "
        f"{dataset.unfinished_cycles} cycle(s) still running were not read.",
        "",
    ]
    lines += _archive_figures(dataset)
    lines += ["", "## Schema", ""]
    lines += _schema()
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "import pandas as pd",
        'sft = pd.read_json("sft.jsonl", lines=True)  # or pd.read_parquet("sft.parquet")',
        "from datasets import load_dataset",
        'sft = load_dataset("json", data_files="sft.jsonl", split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)
