"""The steps of one cycle as plain async functions over the engines: no Faust, no topics.

Agents are glue that move these steps' results between topics; the benchmark's in-process loop
calls the very same functions, so the two differ only by the mesh.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from aimesh.cycle import prompts
from aimesh.cycle.codeextract import extract_code
from aimesh.cycle.records import Review, Solution, Task, Verdict, now
from aimesh.cycle.tasksource import MIN_INVENTED_TESTS, TaskSpec
from aimesh.llm.client import LLM, LLMError
from aimesh.memory import MemorySkill
from aimesh.memory.skill import FAILURE, LESSON
from aimesh.sandbox import Limits, RunResult, ServerPool, run_tests


@dataclass(frozen=True)
class Recall:
    memories: list[str]
    error: str = ""


async def recall(memory: MemorySkill, task: Task, k: int) -> Recall:
    """Memories near the task's error (for a fix) or its text; a memory outage is a value."""
    query = task.previous_error or f"{task.title}\n{task.description}"
    try:
        found = await memory.recall(query, k, exclude_cycle=task.cycle_id)
    except Exception as exc:  # an outage must not stop code generation
        return Recall([], f"{type(exc).__name__}: {exc}")
    return Recall([m.as_prompt() for m in found])


FIX_TEMPERATURES = (0.8, 1.0, 1.0)
"""A fix is sampled warmer, again while it repeats the failed code: at 0.2 Qwen2.5-Coder-0.5B
answered 13 of 13 fix prompts of a HumanEval run with the very code that had failed."""


def _same_code(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


async def solve(llm: LLM, task: Task, memories: list[str], fix_model: str = "") -> Solution:
    """Ask the model for code (a fix goes to `fix_model` when one is set); an unreachable model
    or an answer without code is a value, too."""
    messages = prompts.solve_messages(task.prompt or task.description, memories)
    fields: dict[str, Any] = {"code": "", "note": ""}
    model = fix_model if task.attempt > 1 and fix_model else None
    temperatures = FIX_TEMPERATURES if task.attempt > 1 else (0.2,)
    try:
        for temperature in temperatures:
            result = await llm.chat(messages, max_tokens=512, model=model, temperature=temperature)
            code = extract_code(result.text, task.function_name or task.entry_point)
            if not (task.previous_code and _same_code(code, task.previous_code)):
                break
    except LLMError as exc:
        fields["note"] = f"LLM error: {exc}"
    else:
        fields.update(
            code=code,
            model=result.model,
            latency_ms=result.latency_ms,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
        if not fields["code"]:
            fields["note"] = f"no Python code in the answer: {result.text[:300]!r}"
    return Solution(
        cycle_id=task.cycle_id,
        attempt=task.attempt,
        task=task,
        memories=memories,
        created_at=now(),
        **fields,
    )


async def judge(solution: Solution, limits: Limits, sandbox: ServerPool) -> RunResult:
    """Run the solution with its task's tests on the `sandbox` fork servers, under the task's
    own limits where it sets any; no code at all is an error without a run."""
    if not solution.code.strip():
        note = solution.note or "the answer had no Python code"
        return RunResult(status="error", error_type="NoCode", error=note)
    task = solution.task
    limits = limits.with_overrides(task.limits)
    return await run_tests(
        solution.code, task.tests, task.entry_point or None, task.preamble, limits, sandbox
    )


async def agreed_tests(
    spec: TaskSpec, solution: str, limits: Limits, sandbox: ServerPool
) -> tuple[TaskSpec, int]:
    """An invented task with only the tests its own solution passes, each judged alone, and how
    many were dropped; ValueError when fewer than MIN_INVENTED_TESTS agree.

    A small model's tests are often wrong: in a run on Qwen2.5-Coder-0.5B, 4 of the first 5
    invented tasks expected a wrong value (`count_vowels('abc') == 2`), so every attempt at
    them failed and their whole fix budget was spent on a test no code could pass. A test and
    a solution written apart that agree are far more likely right; the solution itself is never
    shown to the Consumer."""
    code = extract_code(solution, spec.function_name)
    if not code:
        raise ValueError("the task came without a solution to check its tests against")
    lines = [line for line in spec.tests.splitlines() if line.strip()]
    results = await asyncio.gather(
        *(run_tests(code, line, spec.entry_point or None, spec.preamble, limits, sandbox)
          for line in lines)
    )  # fmt: skip
    kept = [line for line, result in zip(lines, results, strict=True) if result.passed]
    if len(kept) < MIN_INVENTED_TESTS:
        failed = next((r for r in results if not r.passed), None)
        why = f" (e.g. {error_text(failed)[:200]})" if failed else ""
        raise ValueError(
            f"its own solution passes {len(kept)} of its {len(lines)} tests, "
            f"need {MIN_INVENTED_TESTS}{why}"
        )
    return replace(spec, tests="\n".join(kept)), len(lines) - len(kept)


def _review_fields(data: object) -> tuple[float, str, list[str]]:
    """Validate the model's review JSON; raise ValueError saying what is wrong with it."""
    if not isinstance(data, dict):
        raise ValueError("the review is not a JSON object")
    score, critique, issues = data.get("score"), data.get("critique"), data.get("issues", [])
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0 <= score <= 1:
        raise ValueError(f"score {score!r} is not a number from 0 to 1")
    if not isinstance(critique, str):
        raise ValueError("critique is not a string")
    if not isinstance(issues, list):
        raise ValueError("issues is not a list")
    return float(score), critique, [str(issue) for issue in issues]


def unreviewed(solution: Solution, why: str) -> Review:
    """The Review of a solution the model is not asked about (AIMESH_REVIEW), saying why."""
    return Review(
        cycle_id=solution.cycle_id,
        attempt=solution.attempt,
        score=None,
        critique=f"Not reviewed: {why}.",
        created_at=now(),
    )


async def review(llm: LLM, solution: Solution, passed: bool | None = None) -> Review:
    """A Review for every solution: an unusable answer gives valid=False with the reason.

    The reviewer sees the task's tests and, when known, whether the code passed them: judged on
    the code alone, a small model scored failing code as high as passing code (0.95 against 1.0).
    """
    base: dict[str, Any] = {"cycle_id": solution.cycle_id, "attempt": solution.attempt}
    if not solution.code.strip():
        return Review(**base, score=None, critique="No code to review.", created_at=now())
    task = solution.task
    try:
        result = await llm.chat(
            prompts.review_messages(
                task.prompt or task.description, solution.code, task.tests, passed
            ),
            schema=prompts.REVIEW_SCHEMA,
            max_tokens=300,
        )
        score, critique, issues = _review_fields(result.json())
    except (LLMError, ValueError) as exc:
        critique = f"Review unavailable: {exc}"[:1000]
        return Review(**base, score=None, critique=critique, valid=False, created_at=now())
    return Review(
        **base,
        score=score,
        critique=critique,
        issues=issues,
        model=result.model,
        latency_ms=result.latency_ms,
        created_at=now(),
    )


@dataclass(frozen=True)
class Decision:
    """What a verdict means for the cycle: its end (`outcome` set), or one more fix."""

    outcome: str
    fixes_used: int
    fixes_left: int

    @property
    def fix(self) -> bool:
        return not self.outcome


def decide(result: RunResult, fixes_used: int, max_fixes: int) -> Decision:
    """Pass ends the cycle; a failure spends one fix while the budget lasts, else gives up."""
    if result.passed:
        return Decision("passed", fixes_used, max_fixes - fixes_used)
    if fixes_used < max_fixes:
        return Decision("", fixes_used + 1, max_fixes - fixes_used - 1)
    return Decision("gave_up", fixes_used, 0)


def verdict_of(solution: Solution, result: RunResult, decision: Decision) -> Verdict:
    return Verdict(
        cycle_id=solution.cycle_id,
        attempt=solution.attempt,
        outcome=decision.outcome,
        fixes_left=decision.fixes_left,
        created_at=now(),
        **result.to_dict(),
    )


def error_text(result: RunResult) -> str:
    """The error as the next prompt and memory see it (with stderr unless a plain assertion)."""
    error = f"{result.error_type}: {result.error}".strip(": ")
    if result.stderr and result.status != "failed":
        error += f"\n{result.stderr[-800:]}"
    return error


def fix_task(solution: Solution, result: RunResult) -> Task:
    """The next attempt: the original task with the failed code and its error in the prompt."""
    task = solution.task
    error = error_text(result)
    original = prompts.first_prompt(task)
    return Task(
        **{
            **task.asdict(),
            "attempt": solution.attempt + 1,
            "prompt": prompts.fix_prompt(original, solution.code, error),
            "previous_code": solution.code,
            "previous_error": error,
        }
    )


async def remember(memory: MemorySkill, solution: Solution, result: RunResult) -> str:
    """Store a failure, or the lesson of a passing fix; return the error text, "" when stored."""
    if result.passed and solution.attempt == 1:
        return ""
    kind, error = (
        (LESSON, solution.task.previous_error) if result.passed else (FAILURE, error_text(result))
    )
    try:
        await memory.remember(
            kind,
            cycle_id=solution.cycle_id,
            attempt=solution.attempt,
            task=solution.task.description,
            code=solution.code,
            error=error,
        )
    except Exception as exc:  # losing a memory must not lose the cycle
        return f"{type(exc).__name__}: {exc}"
    return ""
