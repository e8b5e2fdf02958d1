"""Sandbox: runs each solution against its task's tests, and decides the cycle's next step.

Pass: the verdict goes to `ai_verified_solutions` and ends the cycle. Fail: the verdict goes to
`ai_failed_solutions`, the error goes to memory, and while the retry budget lasts a
`FIX THIS CODE:` task goes back to `ai_topic`; once it is spent the cycle ends as gave_up.
The budget table is keyed by the root task id and also remembers the last attempt judged, so a
redelivered solution creates neither a second verdict nor a second fix task.
"""

from __future__ import annotations

from faust import StreamT

from aimesh import prompts, services
from aimesh.agents.guard import accepted
from aimesh.app import app, settings
from aimesh.memory.skill import FAILURE, LESSON
from aimesh.records import Solution, Task, Verdict, now
from aimesh.sandbox import RunResult, build_program, run_program
from aimesh.telemetry import event, log_event, metric
from aimesh.topics import failed_topic, solutions_topic, tasks_topic, verified_topic

AGENT = "sandbox"

retry_budget = app.Table("retry_budget", default=dict, partitions=settings.partitions)


async def judge(solution: Solution) -> RunResult:
    if not solution.code.strip():
        return RunResult(
            status="error", passed=False, exit_code=None, error_type="NoCode",
            error=solution.note or "the answer had no Python code", error_line=None,
            stdout="", stderr="", duration_ms=0.0,
        )  # fmt: skip
    task = solution.task
    program = build_program(solution.code, task.tests, task.entry_point or None)
    return await run_program(program, services.limits())


def fix_task(solution: Solution, result: RunResult) -> Task:
    """The next attempt: the original task with the failed code and its error in the prompt."""
    task = solution.task
    error = f"{result.error_type}: {result.error}".strip(": ")
    if result.stderr and result.status != "failed":
        error += f"\n{result.stderr[-800:]}"
    original = prompts.task_prompt(task.title, task.description, task.signature, task.tests)
    return Task(
        **{
            **task.asdict(),
            "attempt": solution.attempt + 1,
            "prompt": prompts.fix_prompt(original, solution.code, error),
            "previous_code": solution.code,
            "previous_error": error,
            "created_at": task.created_at,
        }
    )


async def _remember(kind: str, solution: Solution, error: str) -> None:
    try:
        await services.memory().remember(
            kind, cycle_id=solution.cycle_id, attempt=solution.attempt,
            task=solution.task.description, code=solution.code, error=error,
        )  # fmt: skip
    except Exception as exc:
        await event(AGENT, "memory_unavailable", cycle_id=solution.cycle_id, error=str(exc)[:300])


def verdict_of(solution: Solution, result: RunResult, outcome: str, fixes_left: int) -> Verdict:
    return Verdict(
        cycle_id=solution.cycle_id,
        attempt=solution.attempt,
        status=result.status,
        passed=result.passed,
        exit_code=result.exit_code,
        error_type=result.error_type,
        error=result.error,
        error_line=result.error_line,
        stdout=result.stdout,
        stderr=result.stderr,
        duration_ms=result.duration_ms,
        outcome=outcome,
        fixes_left=fixes_left,
        created_at=now(),
    )


@app.agent(solutions_topic)
async def sandbox(stream: StreamT[Solution]) -> None:
    async for message in stream.events():
        solution: Solution = message.value
        if not await accepted(AGENT, message):
            continue
        state = dict(retry_budget[solution.cycle_id])
        if state.get("outcome") or solution.attempt <= state.get("last_attempt", 0):
            await log_event(
                AGENT, f"skipped redelivered attempt {solution.attempt}", cycle_id=solution.cycle_id
            )
            continue
        result = await judge(solution)
        await metric(AGENT, "sandbox_ms", result.duration_ms, cycle_id=solution.cycle_id)
        used = state.get("fixes_used", 0)
        fixes_left = max(settings.max_fixes - used, 0)
        outcome = "passed" if result.passed else ("" if fixes_left else "gave_up")
        if not result.passed and fixes_left:
            used += 1
        retry_budget[solution.cycle_id] = {
            "last_attempt": solution.attempt, "fixes_used": used, "outcome": outcome,
        }  # fmt: skip
        verdict = verdict_of(solution, result, outcome, settings.max_fixes - used)
        topic = verified_topic if result.passed else failed_topic
        await topic.send(key=solution.cycle_id, value=verdict)
        if result.passed:
            if solution.attempt > 1:
                await _remember(LESSON, solution, solution.task.previous_error)
        else:
            await _remember(FAILURE, solution, f"{result.error_type}: {result.error}")
            if not outcome:
                await tasks_topic.send(key=solution.cycle_id, value=fix_task(solution, result))
                await event(
                    AGENT, "retry", cycle_id=solution.cycle_id, attempt=solution.attempt + 1
                )
        if outcome:
            await event(
                AGENT, f"cycle_{outcome}", cycle_id=solution.cycle_id, attempts=solution.attempt
            )
        await event(AGENT, "verdict", cycle_id=solution.cycle_id, status=result.status)
