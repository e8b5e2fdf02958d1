"""Sandbox: runs each solution against its task's tests, and decides the cycle's next step.

Pass: the verdict goes to `ai_verified_solutions` and ends the cycle. Fail: the verdict goes to
`ai_failed_solutions`, the error goes to memory, and while the retry budget lasts a
`FIX THIS CODE:` task goes back to `ai_topic`; once it is spent the cycle ends as gave_up.

The budget table, keyed by the root task id, keeps the last decision with its outputs, written
and sent inside one commit-barrier section: a redelivered solution gets the same verdict and fix
task again (which the agents downstream ignore as duplicates) instead of a second, possibly
different, judgement. In exactly-once mode the decision and its outputs were committed in one
transaction, so a decided attempt is only skipped: sending again would commit a duplicate.

The agent judges as many solutions at once as it has fork servers. Two copies of one attempt can
then arrive together (a producer's retry), before either is recorded: the attempts being judged
are kept in memory too (`_underway`, as the Ledger keeps them), and a copy of one is skipped.
"""

from __future__ import annotations

from typing import Any, cast

from faust import StreamT

from aimesh import services
from aimesh.agents._guard import handle
from aimesh.agents._underway import Underway
from aimesh.app import app, settings
from aimesh.cycle import steps
from aimesh.cycle.records import Solution, Task, Verdict
from aimesh.stream.commit_barrier import commit_barrier
from aimesh.stream.durable_table import DurableTable
from aimesh.stream.telemetry import event, log_event, metric
from aimesh.topics import failed_topic, solutions_topic, tasks_topic, verified_topic

AGENT = "sandbox"
_judging = Underway()

retry_budget = cast(
    DurableTable, app.Table("retry_budget", default=dict, partitions=settings.partitions)
)


async def _send(cycle_id: str, decided: dict[str, Any]) -> None:
    verdict = Verdict(**decided["verdict"])
    topic = verified_topic if verdict.passed else failed_topic
    await (await topic.send(key=cycle_id, value=verdict))
    if decided["fix"]:
        await (await tasks_topic.send(key=cycle_id, value=Task(**decided["fix"])))


async def judge(solution: Solution) -> None:
    """Run, decide, record the decision, then send it; memory comes last and may fail alone."""
    cycle_id = solution.cycle_id
    result = await steps.judge(solution, services.limits(), services.sandbox_pool())
    decision = steps.decide(result, retry_budget[cycle_id].get("fixes_used", 0), settings.max_fixes)
    fix = steps.fix_task(solution, result) if decision.fix else None
    decided = {
        "last_attempt": solution.attempt,
        "fixes_used": decision.fixes_used,
        "outcome": decision.outcome,
        "verdict": steps.verdict_of(solution, result, decision).asdict(),
        "fix": fix.asdict() if fix else None,
    }
    async with commit_barrier.section():
        retry_budget[cycle_id] = decided
        await _send(cycle_id, decided)
        await retry_budget.written()
    await metric(
        AGENT, "sandbox_ms", result.duration_ms, cycle_id=cycle_id, attempt=solution.attempt,
        status=result.status,
    )  # fmt: skip
    if fix:
        await event(AGENT, "retry", cycle_id=cycle_id, attempt=fix.attempt)
    else:
        await event(
            AGENT, f"cycle_{decision.outcome}", cycle_id=cycle_id, attempts=solution.attempt
        )
    memory_error = await steps.remember(services.memory(), solution, result)
    if memory_error:
        await event(AGENT, "memory_unavailable", cycle_id=cycle_id, error=memory_error[:300])


async def on_solution(solution: Solution) -> None:
    attempt = (solution.cycle_id, solution.attempt)
    state = retry_budget[solution.cycle_id]
    last = state.get("last_attempt", 0)
    if solution.attempt > last and not state.get("outcome") and attempt not in _judging:
        with _judging.holding(*attempt):
            await judge(solution)
        return
    if solution.attempt == last and not settings.exactly_once:
        await _send(solution.cycle_id, state)
        note = f"re-sent the decision on redelivered attempt {solution.attempt}"
    else:
        note = f"skipped redelivered attempt {solution.attempt}"
    await log_event(AGENT, note, cycle_id=solution.cycle_id)


@app.agent(solutions_topic, concurrency=settings.sandbox_pool_config().servers)
async def sandbox(stream: StreamT[Solution]) -> None:
    async for message in stream.events():
        await handle(AGENT, message, on_solution)
