"""HumanEval through the project's own parts: the `humaneval` task source and the sandbox engine.

The 164 canonical solutions must pass with their own tests, and the same solutions with their
return values altered must not: a sandbox that passes everything, or nothing, fails here.
"""

from __future__ import annotations

import asyncio
import gzip
import json

from aimesh.sandbox import Limits, build_program, run_program
from aimesh.settings import Settings
from aimesh.tasksource import humaneval_path, read_tasks

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


def problems() -> list[dict]:
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


async def run_all(programs: list[str]) -> list[str]:
    gate = asyncio.Semaphore(4)
    limits = Limits(timeout_s=10)

    async def one(program: str) -> str:
        async with gate:
            return (await run_program(program, limits)).status

    return await asyncio.gather(*(one(program) for program in programs))


def test_the_humaneval_source_gives_164_tasks_with_their_entry_points():
    assert Settings.from_env({"AIMESH_TASKS": "HumanEval"}).tasks == "humaneval"
    specs = list(read_tasks("humaneval"))
    assert len(specs) == 164
    assert specs[0].id == "HumanEval/0" and specs[0].entry_point == "has_close_elements"
    assert all("def check(candidate)" in spec.tests for spec in specs)


async def test_canonical_solutions_pass_and_altered_ones_do_not():
    data = problems()
    canonical = [
        build_program(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"])
        for p in data
    ]
    altered = [
        build_program(
            p["prompt"] + p["canonical_solution"] + ALTERED.format(name=p["entry_point"]),
            p["test"],
            p["entry_point"],
        )
        for p in data
    ]
    statuses = await run_all(canonical)
    assert statuses.count("passed") == 164, [
        (p["task_id"], s) for p, s in zip(data, statuses, strict=True) if s != "passed"
    ]
    altered_statuses = await run_all(altered)
    assert altered_statuses == ["failed"] * 164, {
        s: altered_statuses.count(s) for s in set(altered_statuses)
    }


def _without_imports(prompt: str) -> str:
    return "\n".join(
        line for line in prompt.splitlines() if not line.startswith(("import ", "from "))
    )


async def test_the_prompt_runs_as_a_preamble_so_its_imports_need_not_be_repeated():
    """A model's full function without the prompt's `from typing import List` passes, as in
    published pass@1 runs; without the preamble, most such solutions fail on the import (19 of
    21: two prompts import typing without using it in a signature)."""
    data = problems()
    solutions = [_without_imports(p["prompt"]) + "\n" + p["canonical_solution"] for p in data]
    with_preamble = await run_all(
        [
            build_program(code, p["test"], p["entry_point"], preamble=p["prompt"])
            for code, p in zip(solutions, data, strict=True)
        ]
    )
    assert with_preamble == ["passed"] * 164
    needs_import = [i for i, p in enumerate(data) if "from typing import" in p["prompt"]]
    assert len(needs_import) > 20
    without = await run_all(
        [build_program(solutions[i], data[i]["test"], data[i]["entry_point"]) for i in needs_import]
    )
    assert without.count("error") >= len(needs_import) - 2


def test_a_humaneval_task_hides_its_tests_and_carries_its_prompt_as_preamble():
    from aimesh.prompts import first_prompt

    spec = next(iter(read_tasks("humaneval")))
    assert spec.tests_hidden and spec.preamble == problems()[0]["prompt"]
    prompt = first_prompt(spec)
    assert "def has_close_elements" in prompt and "check(" not in prompt
    assert prompt.count("from typing import List") == 1, "the prompt is shown once"
