"""Each agent's branches for a message it has seen before, without a broker.

Messages reach the agent through Faust's `agent.test_context()`, so they pass through the agent's
own stream and its checks (`_guard.handle`). The agent's tables are in-memory stand-ins and its
outputs are captured, so what is under test is only which branch a redelivered message takes.
The broker-backed tests (test_mesh, test_faults) run the same paths end to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aimesh import services
from aimesh.agents import _ledger, consumer, persistence, reviewer, sandbox
from aimesh.archive import CycleArchive, new_state
from aimesh.cycle.records import Review, Solution, Task, Verdict, now
from aimesh.cycle.steps import unreviewed
from testbed.mesh_tasks import new_task


class MemoryTable(dict[str, Any]):
    """A table's reads and writes, in memory: a default for a missing key, and the `written()`
    that a DurableTable awaits for its changelog."""

    def __init__(self, default: Callable[[], Any]) -> None:
        super().__init__()
        self._default = default

    def __missing__(self, key: str) -> Any:
        return self._default()

    async def written(self) -> None:
        return None


@dataclasses.dataclass
class Captured:
    """What the agent sent and said, in order."""

    calls: list[tuple[str, Any]] = dataclasses.field(default_factory=list)

    def recorder(self, name: str) -> Callable[..., Any]:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args[1] if name in ("log", "event", "metric") else args[0]))

        return record

    def named(self, name: str) -> list[Any]:
        return [what for called, what in self.calls if called == name]


@pytest.fixture
def captured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """The app ready for test contexts, every agent's tables in memory, their telemetry off."""
    monkeypatch.chdir(tmp_path)  # Faust's data dir is made relative to the working dir
    from aimesh.app import app

    app.finalize()
    app.flow_control.resume()
    seen = Captured()
    monkeypatch.setattr(_ledger, "log_event", seen.recorder("log"))
    monkeypatch.setattr(sandbox, "log_event", seen.recorder("log"))
    for module in (consumer, reviewer, sandbox, persistence):
        monkeypatch.setattr(module, "event", seen.recorder("event"))
        if hasattr(module, "metric"):
            monkeypatch.setattr(module, "metric", seen.recorder("metric"))
    monkeypatch.setattr(consumer.ledger, "table", MemoryTable(int))
    monkeypatch.setattr(reviewer.ledger, "table", MemoryTable(int))
    monkeypatch.setattr(reviewer, "pending", MemoryTable(dict))
    monkeypatch.setattr(sandbox, "retry_budget", MemoryTable(dict))
    monkeypatch.setattr(persistence, "joins", MemoryTable(new_state))
    yield seen


def solution_for(task: Task, attempt: int = 1) -> Solution:
    """A solution to the task's `attempt` (its task record carries that attempt, as it must)."""
    code = "def add(a, b):\n    return a + b\n"
    task = Task(**{**task.asdict(), "attempt": attempt})
    return Solution(cycle_id=task.cycle_id, attempt=attempt, task=task, code=code, created_at=now())


async def put_all(agent: Any, *records: Any) -> None:
    async with agent.test_context() as context:
        for record in records:
            await context.put(record, key=record.cycle_id)


# ---------------------------------------------------------------- Consumer


async def test_consumer_writes_an_attempt_once_however_often_it_arrives(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = new_task("[pass]")
    monkeypatch.setattr(consumer, "solve", _solving(captured))
    monkeypatch.setattr(consumer, "deliver", captured.recorder("send"))
    monkeypatch.setattr(consumer, "report", captured.recorder("report"))
    fix = Task(**{**task.asdict(), "attempt": 2})

    await put_all(consumer.consumer, task, task, fix, task)

    assert [s.attempt for s in captured.named("solve")] == [1, 2]
    assert [s.attempt for s in captured.named("send")] == [1, 2]
    assert captured.named("log") == ["skipped redelivered attempt 1"] * 2
    assert consumer.ledger.table[task.cycle_id] == 2


def _solving(captured: Captured) -> Callable[[Task], Any]:
    async def solve(task: Task) -> Solution:
        solution = solution_for(task, task.attempt)
        captured.calls.append(("solve", solution))
        return solution

    return solve


# ---------------------------------------------------------------- Sandbox


def _decided(attempt: int, outcome: str) -> dict[str, Any]:
    return {"last_attempt": attempt, "outcome": outcome, "fixes_used": attempt - 1}


@pytest.fixture
def judging(captured: Captured, monkeypatch: pytest.MonkeyPatch) -> Captured:
    monkeypatch.setattr(sandbox, "judge", captured.recorder("judge"))
    monkeypatch.setattr(sandbox, "_send", lambda cycle_id, state: _sent(captured, state))
    return captured


async def _sent(captured: Captured, state: dict[str, Any]) -> None:
    captured.calls.append(("send", state))


async def test_sandbox_judges_an_attempt_it_has_not_decided(judging: Captured) -> None:
    task = new_task("[pass]")
    sandbox.retry_budget[task.cycle_id] = _decided(1, "")  # attempt 1 failed, a fix was sent
    await put_all(sandbox.sandbox, solution_for(task, 2))
    assert [s.attempt for s in judging.named("judge")] == [2]
    assert judging.named("send") == []


async def test_sandbox_sends_its_decision_again_for_the_same_attempt(judging: Captured) -> None:
    """Not judged again (a second run could differ); the recorded decision is sent again, which
    the agents downstream ignore as a duplicate."""
    task = new_task("[pass]")
    decided = _decided(1, "passed")
    sandbox.retry_budget[task.cycle_id] = decided
    await put_all(sandbox.sandbox, solution_for(task, 1))
    assert judging.named("judge") == []
    assert judging.named("send") == [decided]
    assert judging.named("log") == ["re-sent the decision on redelivered attempt 1"]


async def test_sandbox_in_exactly_once_mode_only_skips_the_same_attempt(
    judging: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision and its outputs were committed in one transaction: sending again would
    commit a duplicate."""
    monkeypatch.setattr(
        sandbox, "settings", dataclasses.replace(sandbox.settings, exactly_once=True)
    )
    task = new_task("[pass]")
    sandbox.retry_budget[task.cycle_id] = _decided(1, "passed")
    await put_all(sandbox.sandbox, solution_for(task, 1))
    assert (judging.named("judge"), judging.named("send")) == ([], [])
    assert judging.named("log") == ["skipped redelivered attempt 1"]


async def test_sandbox_skips_an_older_attempt_and_any_after_the_end(judging: Captured) -> None:
    task = new_task("[pass]")
    sandbox.retry_budget[task.cycle_id] = _decided(2, "gave_up")
    await put_all(sandbox.sandbox, solution_for(task, 1), solution_for(task, 3))
    assert (judging.named("judge"), judging.named("send")) == ([], [])
    assert judging.named("log") == [
        "skipped redelivered attempt 1",
        "skipped redelivered attempt 3",
    ]


async def test_sandbox_judges_two_copies_arriving_together_once(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At concurrency 2 both copies can be in hand before either decision is recorded."""
    release = asyncio.Event()

    async def slow_judge(solution: Solution) -> None:
        captured.calls.append(("judge", solution))
        await release.wait()
        sandbox.retry_budget[solution.cycle_id] = _decided(solution.attempt, "passed")

    monkeypatch.setattr(sandbox, "judge", slow_judge)
    monkeypatch.setattr(sandbox, "_send", lambda cycle_id, state: _sent(captured, state))
    solution = solution_for(new_task("[pass]"), 1)
    first = asyncio.ensure_future(sandbox.on_solution(solution))
    await asyncio.sleep(0)
    await sandbox.on_solution(solution)
    release.set()
    await first
    assert [s.attempt for s in captured.named("judge")] == [1]
    assert captured.named("log") == ["skipped redelivered attempt 1"]
    assert len(sandbox._judging) == 0


# ---------------------------------------------------------------- Reviewer


@pytest.fixture
def reviewing(captured: Captured, monkeypatch: pytest.MonkeyPatch) -> Captured:
    async def review(llm: Any, solution: Solution, passed: bool | None = None) -> Review:
        captured.calls.append(("review", (solution.attempt, passed)))
        return unreviewed(solution, "scripted")

    monkeypatch.setattr(reviewer.steps, "review", review)
    monkeypatch.setattr(services, "llm", lambda: None)
    monkeypatch.setattr(reviewer, "deliver", captured.recorder("send"))
    monkeypatch.setattr(reviewer, "report", captured.recorder("report"))
    return captured


def _review_mode(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setattr(reviewer, "settings", dataclasses.replace(reviewer.settings, review=mode))


async def test_reviewer_reviews_a_redelivered_solution_once(
    reviewing: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    _review_mode(monkeypatch, "all")
    task = new_task("[pass]")
    await put_all(reviewer.reviewer, solution_for(task), solution_for(task))
    assert reviewing.named("review") == [(1, None)]
    assert len(reviewing.named("send")) == 1
    assert reviewing.named("log") == ["skipped redelivered attempt 1"]


async def test_reviewer_in_passed_mode_ignores_a_redelivered_pass(
    reviewing: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The solution and its verdict meet once; the pass redelivered after the review leaves no
    half waiting in the table for ever."""
    _review_mode(monkeypatch, "passed")
    task = new_task("[pass]")
    verdict = Verdict(
        cycle_id=task.cycle_id, attempt=1, status="passed", passed=True, created_at=now()
    )
    await put_all(reviewer.reviewer, solution_for(task))
    await put_all(reviewer.review_passes, verdict, verdict)
    assert reviewing.named("review") == [(1, True)]
    assert task.cycle_id not in reviewer.pending


# ---------------------------------------------------------------- Persistence


async def test_persistence_archives_a_redelivered_part_once(
    captured: Captured, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = CycleArchive(tmp_path / "tables")
    monkeypatch.setattr(services, "archive", lambda: archive)
    task = new_task("[pass]")
    verdict = Verdict(
        cycle_id=task.cycle_id,
        attempt=1,
        status="passed",
        passed=True,
        outcome="passed",
        created_at=now(),
    )
    review = unreviewed(solution_for(task), "scripted")
    await put_all(persistence.persist_solutions, solution_for(task), solution_for(task))
    await put_all(persistence.persist_passes, verdict)
    await put_all(persistence.persist_reviews, review, review)
    await put_all(persistence.persist_passes, verdict)

    assert len(archive.attempts.read()) == 1
    assert archive.cycles.read()["cycle_id"].tolist() == [task.cycle_id]
    assert captured.named("event") == ["cycle_archived"]
