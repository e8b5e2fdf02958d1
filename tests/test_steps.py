"""The cycle's decisions, without a broker: what a verdict means for the retry budget, what the
next attempt's task says, and how a model's review answer is read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aimesh.cycle import steps
from aimesh.cycle.records import Solution
from aimesh.llm.client import ChatResult, LLMError
from aimesh.sandbox import RunResult
from testbed.mesh_tasks import new_task

PASSED = RunResult(status="passed", passed=True)
FAILED = RunResult(
    status="failed", error_type="AssertionError", error="add(1, 2) returned -1, expected 3",
    stderr="Traceback ...",
)  # fmt: skip
CRASHED = RunResult(status="error", error_type="NameError", error="name 'x' is not defined",
                    stderr="Traceback: line 3")  # fmt: skip


def _solution(code: str = "def add(a, b):\n    return a - b\n") -> Solution:
    task = new_task("[fix]")
    return Solution(cycle_id=task.cycle_id, attempt=1, task=task, code=code)


@pytest.mark.parametrize(
    ("result", "used", "most", "outcome", "fixes_used", "left"),
    [
        (PASSED, 0, 3, "passed", 0, 3),
        (PASSED, 2, 3, "passed", 2, 1),
        (FAILED, 0, 3, "", 1, 2),  # one more fix, spending one
        (FAILED, 2, 3, "", 3, 0),  # the last fix
        (FAILED, 3, 3, "gave_up", 3, 0),
        (CRASHED, 0, 0, "gave_up", 0, 0),  # no fixes at all
    ],
)
def test_a_verdict_ends_the_cycle_or_spends_one_fix(result, used, most, outcome, fixes_used, left):
    decision = steps.decide(result, used, most)
    assert (decision.outcome, decision.fixes_used, decision.fixes_left) == (
        outcome, fixes_used, left,
    )  # fmt: skip
    assert decision.fix == (outcome == "")


def test_the_next_attempt_carries_the_failed_code_and_its_error():
    solution = _solution()
    fix = steps.fix_task(solution, FAILED)
    assert (fix.cycle_id, fix.attempt) == (solution.cycle_id, 2)
    assert fix.previous_code == solution.code
    assert fix.previous_error == "AssertionError: add(1, 2) returned -1, expected 3"
    assert fix.prompt.startswith("FIX THIS CODE")
    assert solution.code in fix.prompt and "returned -1, expected 3" in fix.prompt
    assert (fix.tests, fix.title) == (solution.task.tests, solution.task.title)


def test_an_error_shows_its_stderr_but_a_failed_assertion_does_not():
    assert steps.error_text(FAILED) == "AssertionError: add(1, 2) returned -1, expected 3"
    assert steps.error_text(CRASHED).endswith("\nTraceback: line 3")


def test_the_verdict_says_what_the_decision_was():
    solution = _solution()
    verdict = steps.verdict_of(solution, FAILED, steps.decide(FAILED, 0, 3))
    assert (verdict.cycle_id, verdict.attempt, verdict.outcome, verdict.fixes_left) == (
        solution.cycle_id, 1, "", 2,
    )  # fmt: skip
    assert verdict.error_type == "AssertionError" and not verdict.passed


class _Answers:
    """A scripted model: answers each chat with the next text, or raises it."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.asked: list[list[dict[str, str]]] = []

    async def chat(self, messages: list[dict[str, str]], **_: Any) -> ChatResult:
        self.asked.append(messages)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return ChatResult(text, "scripted", 12.0, 10, 20)


async def test_a_usable_review_is_read_with_its_score_and_issues():
    llm = _Answers({"score": 0.25, "critique": "subtracts", "issues": ["uses -", 3]})
    review = await steps.review(llm, _solution(), passed=False)  # type: ignore[arg-type]
    assert (review.score, review.critique, review.issues, review.valid) == (
        0.25, "subtracts", ["uses -", "3"], True,
    )  # fmt: skip
    prompt = "\n".join(m["content"] for m in llm.asked[0])
    assert "assert add(1, 2) == 3" in prompt  # the reviewer sees the tests


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"score": 1.5, "critique": "x"}, "score 1.5 is not a number from 0 to 1"),
        ({"score": True, "critique": "x"}, "score True is not a number"),
        ({"score": 0.5}, "critique is not a string"),
        ({"score": 0.5, "critique": "x", "issues": "none"}, "issues is not a list"),
        ([0.5], "the review is not a JSON object"),
        ("looks fine to me", "not JSON"),
        (LLMError("connection refused"), "connection refused"),
    ],
)
async def test_an_unusable_review_is_kept_as_invalid_with_the_reason(answer, why):
    review = await steps.review(_Answers(answer), _solution())  # type: ignore[arg-type]
    assert review.valid is False and review.score is None
    assert review.critique.startswith("Review unavailable:") and why in review.critique


async def test_no_code_gets_a_review_without_asking_the_model():
    llm = _Answers()
    review = await steps.review(llm, _solution(code="  "))  # type: ignore[arg-type]
    assert review.score is None and review.critique == "No code to review."
    assert llm.asked == []


# ---------------------------------------------------------------- invented tasks


def _invented(*tests: str) -> Any:
    from aimesh.cycle.tasksource import invented_task

    data = {"title": "Vowels", "description": "Count the vowels.", "function_name": "vowels",
            "signature": "def vowels(s):", "tests": list(tests)}  # fmt: skip
    return invented_task(data, "t-1")


VOWELS = "def vowels(s):\n    return sum(c in 'aeiou' for c in s)\n"
RIGHT = ["assert vowels('abc') == 1", "assert vowels('') == 0", "assert vowels('aei') == 3"]


async def test_an_invented_task_keeps_the_tests_its_own_solution_passes() -> None:
    from aimesh.sandbox import Limits
    from aimesh.sandbox.pool import pool

    spec = _invented(*RIGHT, "assert vowels('abc') == 2")  # a small model's typical slip
    kept, dropped = await steps.agreed_tests(spec, VOWELS, Limits(timeout_s=5), pool())
    assert (kept.tests.splitlines(), dropped) == (RIGHT, 1)
    fenced = f"```python\n{VOWELS}```"
    assert (await steps.agreed_tests(spec, fenced, Limits(timeout_s=5), pool()))[1] == 1


@pytest.mark.parametrize(
    ("solution", "says"),
    [
        ("", "without a solution"),
        ("def vowels(s):\n    return 2\n", "passes 1 of its 4 tests, need 3 (e.g. AssertionError"),
        ("def other(s):\n    return 0\n", "passes 0 of its 4 tests"),
    ],
)
async def test_an_invented_task_whose_solution_and_tests_disagree_is_refused(solution, says):
    from aimesh.sandbox import Limits
    from aimesh.sandbox.pool import pool

    spec = _invented(*RIGHT, "assert vowels('abc') == 2")
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        await steps.agreed_tests(spec, solution, Limits(timeout_s=5), pool())
