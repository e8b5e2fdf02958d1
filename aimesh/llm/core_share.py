"""How many threads the model may decode with: the cores its neighbours leave free.

llama.cpp's threads meet at a barrier after every matrix product and spin while they wait. With
as many threads as cores and a busy neighbour, one thread is always descheduled and the others
spin for it: measured on 2 cores, a review took 130 s beside another llama.cpp process instead of
4.8 s. One thread fewer than the busy cores keeps most of the speed instead, so before each decode
the engine asks for the cores that the rest of the machine did not use over the last half second
(from /proc/stat, less this process's own time). Where /proc is missing, every core is used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

SAMPLE_SECONDS = 0.5


def _machine_ticks() -> tuple[int, int]:
    """(all CPU time, idle CPU time) in clock ticks since boot, over every core."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]), idle


def _own_ticks() -> int:
    """This process's user and system time in clock ticks (every thread's)."""
    after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(after_name[11]) + int(after_name[12])


class CoreShare:
    """Threads for the next decode; `fixed` pins the count (a user's explicit choice)."""

    def __init__(
        self,
        cores: int | None = None,
        *,
        fixed: int | None = None,
        machine: Callable[[], tuple[int, int]] = _machine_ticks,
        own: Callable[[], int] = _own_ticks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cores = cores or os.cpu_count() or 1
        self.fixed = fixed
        self._machine, self._own, self._clock = machine, own, clock
        self._current = fixed or self.cores
        self._last: tuple[float, int, int, int] | None = None
        if fixed is None:
            try:
                self._last = (clock(), *machine(), own())
            except (OSError, ValueError, IndexError):
                self._last = None

    def threads(self) -> int:
        """The thread count to use now; re-measured at most every SAMPLE_SECONDS."""
        if self.fixed is not None or self._last is None:
            return self._current
        now = self._clock()
        if now - self._last[0] < SAMPLE_SECONDS:
            return self._current
        try:
            total, idle = self._machine()
            own = self._own()
        except (OSError, ValueError, IndexError):
            return self._current
        _, last_total, last_idle, last_own = self._last
        self._last = (now, total, idle, own)
        elapsed = total - last_total
        if elapsed <= 0:
            return self._current
        busy = (elapsed - (idle - last_idle)) - (own - last_own)
        neighbours = max(0.0, busy / elapsed * self.cores)
        self._current = max(1, min(self.cores, self.cores - round(neighbours)))
        return self._current
