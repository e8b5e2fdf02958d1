"""Reviewer: critiques solutions with the model, as JSON (score 0-1, critique, issues).

On a CPU every review costs as much model time as the code it reviews, so AIMESH_REVIEW says
which solutions reach the model:
- `all` (default): every solution, as it arrives, with the task's tests;
- `passed`: only code that passed (what the dataset keeps), with its verdict. The solution and
  its verdict arrive on different topics in either order, so they meet in a table keyed by the
  root task id (co-partitioned with both topics);
- `off`: none.
Every solution still gets a Review record (one saying why it was not reviewed), so the archive's
join of task, solution, verdict and review completes for every attempt.
"""

from __future__ import annotations

from typing import Any

from faust import StreamT

from aimesh import services
from aimesh.agents._guard import handle
from aimesh.agents._ledger import Ledger
from aimesh.app import app, settings
from aimesh.cycle import steps
from aimesh.cycle.records import Review, Solution, Verdict
from aimesh.stream.telemetry import event, metric
from aimesh.topics import failed_topic, reviews_topic, solutions_topic, verified_topic

AGENT = "reviewer"

ledger = Ledger("reviewer_handled")
pending = app.Table("review_pending", default=dict, partitions=settings.partitions)
"""cycle_id -> {attempt: {"solution": JSON text, "passed": bool}}, while one half is missing."""


async def deliver(review: Review) -> None:
    await (await reviews_topic.send(key=review.cycle_id, value=review))


async def report(review: Review) -> None:
    """The score with the call's latency, or why the review is invalid (one record each)."""
    cycle_id = review.cycle_id
    figures: dict[str, Any] = {"attempt": review.attempt}
    if review.model:
        figures["llm_latency_ms"] = review.latency_ms
    if not review.valid:
        await event(AGENT, "review_invalid", cycle_id=cycle_id, error=review.critique, **figures)
    if review.score is not None:
        await metric(AGENT, "review_score", review.score, cycle_id=cycle_id, **figures)


async def review_once(solution: Solution, passed: bool | None) -> None:
    """Review once per attempt; `passed` is None while the verdict is unknown.

    A review saying why the model was not asked is sent without the ledger: it costs nothing,
    a duplicate changes nothing downstream, and the ledger only remembers the last attempt of a
    cycle, so an earlier attempt whose verdict came late would otherwise be skipped for ever.
    """
    why = ""
    if settings.review == "off":
        why = "AIMESH_REVIEW=off"
    elif settings.review == "passed" and not passed:
        why = "the code failed its tests (AIMESH_REVIEW=passed)"
    if why:
        await deliver(steps.unreviewed(solution, why))
        return

    async def critique() -> Review:
        return await steps.review(services.llm(), solution, passed)

    review = await ledger.once(AGENT, solution.cycle_id, solution.attempt, critique, deliver)
    if review is not None:
        await report(review)


async def meet(cycle_id: str, attempt: int, half: dict[str, Any]) -> None:
    """Keep one half of (solution, verdict); review once both are there."""
    waiting = dict(pending[cycle_id])
    slot = {**waiting.get(str(attempt), {}), **half}
    if "solution" not in slot or "passed" not in slot:
        pending[cycle_id] = {**waiting, str(attempt): slot}
        return
    solution = Solution.loads(slot["solution"].encode(), serializer="json")
    await review_once(solution, bool(slot["passed"]))
    forget(cycle_id, attempt)


def forget(cycle_id: str, attempt: int) -> None:
    """Drop an attempt's slot (read again: the next attempt may have arrived meanwhile)."""
    left = dict(pending[cycle_id])
    if left.pop(str(attempt), None) is None:
        return
    if left:
        pending[cycle_id] = left
    else:
        pending.pop(cycle_id, None)


async def on_solution(solution: Solution) -> None:
    if settings.review == "passed" and solution.code.strip():
        half = {"solution": solution.dumps().decode()}
        await meet(solution.cycle_id, solution.attempt, half)
    else:
        await review_once(solution, None)
        if settings.review == "passed":  # no code: its verdict may have left a slot
            forget(solution.cycle_id, solution.attempt)


async def on_verdict(verdict: Verdict) -> None:
    if settings.review != "passed":
        return
    if verdict.passed and ledger.done(verdict.cycle_id, verdict.attempt):
        return  # a redelivered pass, already reviewed
    await meet(verdict.cycle_id, verdict.attempt, {"passed": verdict.passed})


@app.agent(solutions_topic, concurrency=settings.llm_concurrency)
async def reviewer(stream: StreamT[Solution]) -> None:
    async for message in stream.events():
        await handle(AGENT, message, on_solution)


@app.agent(verified_topic, name="review_passes")
async def review_passes(stream: StreamT[Verdict]) -> None:
    async for message in stream.events():
        await handle(AGENT, message, on_verdict)


@app.agent(failed_topic, name="review_failures")
async def review_failures(stream: StreamT[Verdict]) -> None:
    async for message in stream.events():
        await handle(AGENT, message, on_verdict)
