"""Sandbox: runs each solution against its task's tests, and decides the cycle's next step.

Pass: the verdict goes to `ai_verified_solutions` and ends the cycle. Fail: the verdict goes to
`ai_failed_solutions`, the error goes to memory, and while the retry budget lasts a
`FIX THIS CODE:` task goes back to `ai_topic`; once it is spent the cycle ends as gave_up.
The budget table is keyed by the root task id and also remembers the last attempt judged, so a
redelivered solution creates neither a second verdict nor a second fix task.
"""

from __future__ import annotations

from faust import StreamT

from aimesh import services, steps
from aimesh.agents.guard import accepted
from aimesh.app import app, settings
from aimesh.records import Solution
from aimesh.telemetry import event, log_event, metric
from aimesh.topics import failed_topic, solutions_topic, tasks_topic, verified_topic

AGENT = "sandbox"

retry_budget = app.Table("retry_budget", default=dict, partitions=settings.partitions)


def _already_judged(solution: Solution) -> bool:
    state = retry_budget[solution.cycle_id]
    return bool(state.get("outcome")) or solution.attempt <= state.get("last_attempt", 0)


async def judge(solution: Solution) -> None:
    cycle_id = solution.cycle_id
    result = await steps.judge(solution, services.limits())
    await metric(AGENT, "sandbox_ms", result.duration_ms, cycle_id=cycle_id)
    used = retry_budget[cycle_id].get("fixes_used", 0)
    decision = steps.decide(result, used, settings.max_fixes)
    retry_budget[cycle_id] = {
        "last_attempt": solution.attempt,
        "fixes_used": decision.fixes_used,
        "outcome": decision.outcome,
    }
    verdict = steps.verdict_of(solution, result, decision)
    await (verified_topic if result.passed else failed_topic).send(key=cycle_id, value=verdict)
    await event(AGENT, "verdict", cycle_id=cycle_id, status=result.status)
    if decision.fix:
        await tasks_topic.send(key=cycle_id, value=steps.fix_task(solution, result))
        await event(AGENT, "retry", cycle_id=cycle_id, attempt=solution.attempt + 1)
    else:
        await event(
            AGENT, f"cycle_{decision.outcome}", cycle_id=cycle_id, attempts=solution.attempt
        )
    memory_error = await steps.remember(services.memory(), solution, result)
    if memory_error:
        await event(AGENT, "memory_unavailable", cycle_id=cycle_id, error=memory_error[:300])


@app.agent(solutions_topic)
async def sandbox(stream: StreamT[Solution]) -> None:
    async for message in stream.events():
        solution: Solution = message.value
        if not await accepted(AGENT, message):
            continue
        if _already_judged(solution):
            await log_event(
                AGENT, f"skipped redelivered attempt {solution.attempt}", cycle_id=solution.cycle_id
            )
            continue
        await judge(solution)
