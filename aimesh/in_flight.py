"""How many cycles the Producer may have open at once, so fixes are not starved by new tasks.

Fix tasks go back to `ai_topic` behind every task already queued there. A Producer that queues a
whole task file at once makes the first fix wait for all of it (measured: with 164 HumanEval
tasks queued, the first cycle needing a fix finished long after the run started). Keeping only a
few cycles open, about as many as the model can work on, lets cycles finish steadily instead.

A cycle is open from the Producer's send until the archive (the tables dir the workers share)
holds its cycle row. Workers on machines that do not share a tables dir never see each other's
cycles finish: set AIMESH_MAX_IN_FLIGHT=0 (no limit) there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class InFlightWindow:
    """The cycles this Producer started that have not finished; `limit` 0 means no limit."""

    def __init__(self, limit: int, finished: Callable[[], Iterable[str]]) -> None:
        self.limit = limit
        self._finished = finished
        self.open: set[str] = set()

    def started(self, cycle_id: str) -> None:
        self.open.add(cycle_id)

    def has_room(self) -> bool:
        """Whether one more cycle may start; asks for the finished ids only while it is full."""
        if not self.limit or len(self.open) < self.limit:
            return True
        self.open.difference_update(self._finished())
        return len(self.open) < self.limit
