"""HumanEval's canonical solutions, and the same solutions made wrong: controls for a judge.

A judge that passes everything, or nothing, is caught by running both: every canonical solution
must pass its tests, every altered one (its entry point's return value changed) must not. Used
by the tests and by `bench/` to check the sandbox, through its API, its CLI and the mesh.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from aimesh.cycle.tasksource import humaneval_path

ALTERED = """
import functools as _functools


def _altered(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, (list, tuple)):
        return type(value)([*value, None])
    return 0 if value is None else None


_original = {name}


@_functools.wraps(_original)
def {name}(*args, **kwargs):
    return _altered(_original(*args, **kwargs))
"""


def problems() -> list[dict[str, Any]]:
    """The 164 problems as the package ships them."""
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def canonical(problem: dict[str, Any]) -> str:
    """The prompt with its canonical body: a whole program that passes."""
    return problem["prompt"] + problem["canonical_solution"]


def altered(problem: dict[str, Any]) -> str:
    """The canonical program with its entry point wrapped to return a changed value."""
    return canonical(problem) + ALTERED.format(name=problem["entry_point"])
