"""Reviewer: critiques each solution with the model, as JSON (score 0-1, critique, issues)."""

from __future__ import annotations

from faust import StreamT

from aimesh import services, steps
from aimesh.agents.guard import handle
from aimesh.agents.ledger import Ledger
from aimesh.app import app, settings
from aimesh.records import Review, Solution
from aimesh.telemetry import event, metric
from aimesh.topics import reviews_topic, solutions_topic

AGENT = "reviewer"

ledger = Ledger("reviewer_handled")


async def critique(solution: Solution) -> Review:
    """Every solution gets a review, a usable one or one that says why there is none."""
    return await steps.review(services.llm(), solution)


async def deliver(review: Review) -> None:
    await (await reviews_topic.send(key=review.cycle_id, value=review))


async def report(review: Review) -> None:
    if not review.valid:
        await event(AGENT, "review_invalid", cycle_id=review.cycle_id, error=review.critique)
    if review.model:
        await metric(AGENT, "llm_latency_ms", review.latency_ms, cycle_id=review.cycle_id)
    await metric(AGENT, "review_score", review.score or 0.0, cycle_id=review.cycle_id)


async def on_solution(solution: Solution) -> None:
    review = await ledger.once(
        AGENT, solution.cycle_id, solution.attempt, lambda: critique(solution), deliver
    )
    if review is not None:
        await report(review)


@app.agent(solutions_topic, concurrency=settings.llm_concurrency)
async def reviewer(stream: StreamT[Solution]) -> None:
    async for message in stream.events():
        await handle(AGENT, message, on_solution)
