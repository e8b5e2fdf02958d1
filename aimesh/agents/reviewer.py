"""Reviewer: critiques each solution with the model, as JSON (score 0-1, critique, issues)."""

from __future__ import annotations

from faust import StreamT

from aimesh import prompts, services
from aimesh.agents.guard import accepted
from aimesh.app import app
from aimesh.llm.client import LLMError
from aimesh.records import Review, Solution, now
from aimesh.telemetry import event, metric
from aimesh.topics import reviews_topic, solutions_topic

AGENT = "reviewer"


def _review_from(data: object) -> tuple[float, str, list[str]]:
    """Validate the model's JSON; raise ValueError saying what is wrong with it."""
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


async def review(solution: Solution) -> Review:
    """A Review for every solution: an unusable answer gives valid=False with the reason."""
    base = {"cycle_id": solution.cycle_id, "attempt": solution.attempt}
    if not solution.code.strip():
        return Review(**base, score=0.0, critique="No code to review.", created_at=now())
    task = solution.task.prompt or solution.task.description
    try:
        result = await services.llm().chat(
            prompts.review_messages(task, solution.code),
            schema=prompts.REVIEW_SCHEMA,
            max_tokens=300,
        )
        await metric(AGENT, "llm_latency_ms", result.latency_ms, cycle_id=solution.cycle_id)
        score, critique, issues = _review_from(result.json())
    except (LLMError, ValueError) as exc:
        await event(AGENT, "review_invalid", cycle_id=solution.cycle_id, error=str(exc)[:300])
        return Review(
            **base,
            score=None,
            critique=f"Review unavailable: {exc}"[:1000],
            valid=False,
            created_at=now(),
        )
    return Review(
        **base,
        score=score,
        critique=critique,
        issues=issues,
        model=result.model,
        latency_ms=result.latency_ms,
        created_at=now(),
    )


@app.agent(solutions_topic)
async def reviewer(stream: StreamT[Solution]) -> None:
    async for message in stream.events():
        solution: Solution = message.value
        if not await accepted(AGENT, message):
            continue
        verdict = await review(solution)
        await reviews_topic.send(key=solution.cycle_id, value=verdict)
        await metric(AGENT, "review_score", verdict.score or 0.0, cycle_id=solution.cycle_id)
