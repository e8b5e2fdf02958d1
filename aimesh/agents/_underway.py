"""The attempts an agent is working on in this worker right now.

An agent with concurrency above 1 can hold two copies of one attempt at once (a producer's retry
puts a duplicate beside the original) before its table records either; the second copy has to
see that the first is under way, and is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Underway:
    """(cycle_id, attempt) pairs in progress, each held for the span of a `with`."""

    def __init__(self) -> None:
        self._attempts: set[tuple[str, int]] = set()

    def __contains__(self, attempt: tuple[str, int]) -> bool:
        return attempt in self._attempts

    def __len__(self) -> int:
        return len(self._attempts)

    @contextmanager
    def holding(self, cycle_id: str, attempt: int) -> Iterator[None]:
        self._attempts.add((cycle_id, attempt))
        try:
            yield
        finally:
            self._attempts.discard((cycle_id, attempt))
