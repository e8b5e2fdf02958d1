"""A task's own sandbox limits reach its run, and a record with bad limits is refused."""

import pytest

from aimesh.cycle import steps
from aimesh.cycle.records import Solution, Task
from aimesh.sandbox import Limits
from aimesh.sandbox.pool import pool


def _solution(code: str, limits: dict[str, float]) -> Solution:
    task = Task(
        cycle_id="c1", attempt=1, title="t", description="", tests="assert True", limits=limits
    )
    return Solution(cycle_id="c1", attempt=1, task=task, code=code)


@pytest.mark.asyncio
async def test_the_task_limit_wins_over_the_global_one() -> None:
    slow = "import time\ntime.sleep(3)\n"
    sandbox, wide = pool(), Limits(timeout_s=10)
    result = await steps.judge(_solution(slow, {"timeout_s": 0.5}), wide, sandbox)
    assert result.status == "timeout" and "0.5s" in result.error
    result = await steps.judge(_solution("x = 1", {"timeout_s": 0.5}), wide, sandbox)
    assert result.passed


def test_a_task_with_bad_limits_is_refused() -> None:
    assert any("limits" in p for p in _solution("x", {"memory_mb": -1}).task.problems())
    assert any("limits" in p for p in _solution("x", {"cores": 4}).task.problems())
    assert _solution("x", {"memory_mb": 256}).task.problems() == []
