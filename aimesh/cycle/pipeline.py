"""One cycle, plainly: what the five agents do for one task, as one loop with no broker.

The mesh spreads these very steps over agents and topics (Consumer: recall and solve; Sandbox:
judge, decide, remember, send the fix task; Reviewer: review; Persistence: archive each part).
Read this to see a cycle in order. The benchmark's in-process side runs it to price the mesh,
and tests run it to check a cycle without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aimesh.archive import CycleArchive, new_state
from aimesh.cycle import steps
from aimesh.cycle.records import Task
from aimesh.llm.client import LLM
from aimesh.memory import MemorySkill
from aimesh.sandbox import Limits, ServerPool


@dataclass
class Pipeline:
    """The engines one cycle needs, and the budgets the agents read from the settings."""

    llm: LLM
    memory: MemorySkill
    sandbox: ServerPool
    limits: Limits
    archive: CycleArchive
    max_fixes: int
    memory_k: int
    fix_model: str = ""

    def _record(self, state: dict[str, Any], part: str, data: dict[str, Any]) -> dict[str, Any]:
        """Persistence's join: add one part and write whatever rows it completes (a solution
        brings its task)."""
        return self.archive.add(state, part, data).state

    async def cycle(self, task: Task) -> str:
        """Take one task to its end, attempts and fixes in order; return the cycle's outcome."""
        state, fixes_used = new_state(), 0
        while True:
            recalled = await steps.recall(self.memory, task, self.memory_k)
            solution = await steps.solve(self.llm, task, recalled.memories, self.fix_model)
            state = self._record(state, "solution", solution.asdict())
            result = await steps.judge(solution, self.limits, self.sandbox)
            decision = steps.decide(result, fixes_used, self.max_fixes)
            fixes_used = decision.fixes_used
            verdict = steps.verdict_of(solution, result, decision)
            state = self._record(state, "verdict", verdict.asdict())
            review = await steps.review(self.llm, solution)
            state = self._record(state, "review", review.asdict())
            await steps.remember(self.memory, solution, result)
            if not decision.fix:
                return decision.outcome
            task = steps.fix_task(solution, result)
