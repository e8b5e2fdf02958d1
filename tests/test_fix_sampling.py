"""A fix is sampled warmer, and again while the model repeats the code that failed."""

from __future__ import annotations

from typing import Any

import pytest

from aimesh.cycle import steps
from aimesh.llm.client import ChatResult
from testbed.mesh_tasks import new_task

FAILED = "def add(a, b):\n    return a - b"
FIXED = "def add(a, b):\n    return a + b"


class Answers:
    """Answers in turn, recording each call's temperature and model."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    async def chat(self, messages: list[dict[str, str]], **options: Any) -> ChatResult:
        self.calls.append(options)
        text = f"```python\n{self.answers.pop(0)}\n```"
        return ChatResult(
            text=text, model="m", latency_ms=1.0, prompt_tokens=1, completion_tokens=1
        )


def _fix_task():
    task = new_task("[fix]")
    return task.derive(attempt=2, previous_code=FAILED, previous_error="AssertionError")


@pytest.mark.asyncio
async def test_a_repeated_failed_code_is_sampled_again_warmer() -> None:
    llm = Answers("def add(a, b):\n  return a - b  ", FIXED)
    solution = await steps.solve(llm, _fix_task(), [])  # type: ignore[arg-type]
    assert solution.code == FIXED
    assert [call["temperature"] for call in llm.calls] == [0.8, 1.0]


@pytest.mark.asyncio
async def test_a_first_attempt_is_one_cool_sample_and_fixes_go_to_the_fix_model() -> None:
    first = Answers(FAILED)
    await steps.solve(first, new_task("[fix]"), [], fix_model="big")  # type: ignore[arg-type]
    assert [(c["temperature"], c["model"]) for c in first.calls] == [(0.2, None)]
    fix = Answers(FAILED, FAILED, FAILED)
    solution = await steps.solve(fix, _fix_task(), [], fix_model="big")  # type: ignore[arg-type]
    assert len(fix.calls) == 3 and {c["model"] for c in fix.calls} == {"big"}
    assert solution.code == FAILED, "after the last try, the answer is judged as it is"
