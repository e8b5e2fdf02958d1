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

import time
from collections.abc import Callable, Iterable


class InFlightWindow:
    """The cycles this Producer started that have not finished; `limit` 0 means no limit.

    A cycle open longer than `give_up_after_s` stops counting: one that can never finish (a part
    of it dead-lettered, say) must not hold a place for ever and stop the Producer.
    """

    def __init__(
        self,
        limit: int,
        finished: Callable[[], Iterable[str]],
        give_up_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._finished = finished
        self._give_up_after_s = give_up_after_s
        self._clock = clock
        self.open: dict[str, float] = {}
        self.expired: list[str] = []

    def started(self, cycle_id: str) -> None:
        self.open[cycle_id] = self._clock()

    def has_room(self) -> bool:
        """Whether one more cycle may start; asks for the finished ids only while it is full.
        Ids that stopped counting are left in `expired` for the caller to report."""
        if not self.limit or len(self.open) < self.limit:
            return True
        for cycle_id in self._finished():
            self.open.pop(cycle_id, None)
        oldest = self._clock() - self._give_up_after_s
        for cycle_id, since in list(self.open.items()):
            if since < oldest:
                del self.open[cycle_id]
                self.expired.append(cycle_id)
        return len(self.open) < self.limit
