"""The dataset panel: what `aimesh export` would write now, with its defaults, and the SFT file.

Built from the archive the views already read, again only when the archive changed (the page
asks every few seconds).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from aimesh.archive.dataset import DATASETS, Dataset, Selection, build
from aimesh.archive.export import jsonl

_built: tuple[pd.DataFrame, pd.DataFrame, Dataset] | None = None


def _dataset(cycles: pd.DataFrame, attempts: pd.DataFrame) -> Dataset:
    """The archive reader hands out the same frames until a file changes: build once per pair."""
    global _built
    if _built is None or _built[0] is not cycles or _built[1] is not attempts:
        _built = (cycles, attempts, build(attempts, cycles, Selection()))
    return _built[2]


def exportable(cycles: pd.DataFrame, attempts: pd.DataFrame) -> dict[str, Any]:
    """Records per dataset, duplicates dropped, and the passing cycles left out, by reason."""
    dataset = _dataset(cycles, attempts)
    return {
        "records": {name: len(dataset.records[name]) for name in DATASETS},
        "duplicates": {name: dataset.duplicates[name] for name in DATASETS},
        "left_out": dict(dataset.left_out),
        "download": {"sft": "/api/dataset/sft.jsonl"},
    }


def sft_jsonl(cycles: pd.DataFrame, attempts: pd.DataFrame) -> bytes:
    return jsonl(_dataset(cycles, attempts).records["sft"])
