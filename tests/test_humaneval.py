"""HumanEval through the project's own parts: the `humaneval` task source and the sandbox engine.

The 164 canonical solutions must pass with their own tests, and the same solutions with their
return values altered must not: a sandbox that passes everything, or nothing, fails here. Both
modes: split (the tests in a process of their own, as every verdict is judged) and same-process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from aimesh.archive import CycleArchive
from aimesh.cycle.tasksource import read_tasks
from aimesh.embedded.processes import free_port
from aimesh.sandbox import Limits, build_program, run_program, run_tests
from aimesh.settings import Settings
from testbed.humaneval_controls import altered, canonical, problems

LIMITS = Limits(timeout_s=10)


async def run_all(programs: list[str]) -> list[str]:
    gate = asyncio.Semaphore(4)

    async def one(program: str) -> str:
        async with gate:
            return (await run_program(program, LIMITS)).status

    return await asyncio.gather(*(one(program) for program in programs))


async def judge_all(cases: list[tuple[str, dict]]) -> list[str]:
    """Each (code, problem) judged in the split mode, the prompt as its preamble."""
    gate = asyncio.Semaphore(4)

    async def one(code: str, p: dict) -> str:
        async with gate:
            result = await run_tests(code, p["test"], p["entry_point"], p["prompt"], LIMITS)
            return result.status

    return await asyncio.gather(*(one(code, p) for code, p in cases))


def test_the_humaneval_source_gives_164_tasks_with_their_entry_points():
    assert Settings.from_env({"AIMESH_TASKS": "HumanEval"}).tasks == "humaneval"
    specs = list(read_tasks("humaneval"))
    assert len(specs) == 164
    assert specs[0].id == "HumanEval/0" and specs[0].entry_point == "has_close_elements"
    assert all("def check(candidate)" in spec.tests for spec in specs)


@pytest.mark.parametrize("mode", ["split", "same-process"])
async def test_canonical_solutions_pass_and_altered_ones_do_not(mode):
    data = problems()
    if mode == "split":
        statuses = await judge_all([(canonical(p), p) for p in data])
        altered_statuses = await judge_all([(altered(p), p) for p in data])
    else:
        statuses = await run_all(
            [build_program(canonical(p), p["test"], p["entry_point"]) for p in data]
        )
        altered_statuses = await run_all(
            [build_program(altered(p), p["test"], p["entry_point"]) for p in data]
        )
    assert statuses.count("passed") == 164, [
        (p["task_id"], s) for p, s in zip(data, statuses, strict=True) if s != "passed"
    ]
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
    with_preamble = await judge_all(list(zip(solutions, data, strict=True)))
    assert with_preamble == ["passed"] * 164
    needs_import = [i for i, p in enumerate(data) if "from typing import" in p["prompt"]]
    assert len(needs_import) > 20
    without = await run_all(
        [build_program(solutions[i], data[i]["test"], data[i]["entry_point"]) for i in needs_import]
    )
    assert without.count("error") >= len(needs_import) - 2


def test_a_humaneval_task_hides_its_tests_and_carries_its_prompt_as_preamble():
    from aimesh.cycle.prompts import first_prompt

    spec = next(iter(read_tasks("humaneval")))
    assert spec.tests_hidden and spec.preamble == problems()[0]["prompt"]
    prompt = first_prompt(spec)
    assert "def has_close_elements" in prompt and "check(" not in prompt
    assert prompt.count("from typing import List") == 1, "the prompt is shown once"


def test_canonical_solutions_pass_and_altered_ones_do_not_through_the_mesh(tmp_path, scripted_llm):
    """All 328 as cycles of `aimesh up` (embedded broker, one worker): each task's answer is its
    canonical solution or the altered one, judged as the mesh judges (split mode)."""
    from tests.test_up import up_env

    lines, answers = [], {}
    for number, p in enumerate(problems()):
        for kind, code in (("canonical", canonical(p)), ("altered", altered(p))):
            task_id = f"he-{number:03d}-{kind}"
            lines.append(json.dumps({**p, "task_id": task_id}))
            answers[f"{task_id}:"] = code
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(lines) + "\n")
    port = free_port()
    env = up_env(tmp_path, scripted_llm.host, port)
    env.update(AIMESH_MAX_FIXES="0", AIMESH_MAX_IN_FLIGHT="0", AIMESH_TASK_INTERVAL="0.01")
    scripted_llm.llm.answers = answers
    try:
        result = subprocess.run(
            [sys.executable, "-m", "aimesh", "up", "--max-cycles", str(len(lines)),
             "--tasks", str(tasks), "--web-port", str(port)],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        scripted_llm.llm.answers = {}
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    archive = CycleArchive(tmp_path / "tables")
    attempts = archive.attempts.read()
    assert len(attempts) == 328 and set(attempts["verdict_mode"]) == {"split"}
    kind = attempts["cycle_id"].str.rsplit("-", n=1).str[-1]
    canonical_statuses = list(attempts["status"][kind == "canonical"])
    altered_statuses = list(attempts["status"][kind == "altered"])
    assert canonical_statuses == ["passed"] * 164, sorted(set(canonical_statuses))
    assert altered_statuses == ["failed"] * 164, sorted(set(altered_statuses))
