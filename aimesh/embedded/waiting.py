"""One way to wait for a process to answer, for every part that starts one (the embedded broker,
the embedded LLM server, and the tests and benches that start workers)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(ready: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """True as soon as `ready()` holds, False once `timeout` seconds have passed. `ready` may
    raise to stop the wait early, for example when the process it waits for has died."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True
