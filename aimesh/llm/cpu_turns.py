"""One heavy model computation at a time in this process: the cores run one graph at a time.

The server holds several models (the code model, the fixing model, the embedder), each called
from its own thread. Two llama.cpp graphs at once put twice as many spinning threads on the
cores as there are cores, and every barrier then waits for a descheduled thread. So every decode
step and every embedding takes a turn here, first come first served.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """A first-come, first-served lock: no engine can take every turn in a row."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._issued = 0
        self._serving = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._changed:
            ticket = self._issued
            self._issued += 1
            self._changed.wait_for(lambda: self._serving == ticket)
        try:
            yield
        finally:
            with self._changed:
                self._serving += 1
                self._changed.notify_all()


CPU_TURNS = Turns()
