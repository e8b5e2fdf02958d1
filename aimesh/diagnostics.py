"""`kill -USR1 <worker pid>` logs where every asyncio task of the worker is waiting.

A stream worker that stops making progress shows no error; the stacks of its tasks say what it
waits for (a broker, the model, a lock), which is what one needs to tell a stall from a slow step.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from typing import Any

from aimesh.app import app

log = logging.getLogger(__name__)


def _awaiting(coroutine: Any) -> list[str]:
    """The chain of awaits a suspended coroutine sits in, outermost first (asyncio's own task
    stacks show only the outermost frame)."""
    chain = []
    while coroutine is not None:
        frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        coroutine = getattr(coroutine, "cr_await", None) or getattr(coroutine, "gi_yieldfrom", None)
    return chain


def dump_tasks() -> str:
    """Every pending task in this loop and the chain of awaits it waits in."""
    out = io.StringIO()
    tasks = [task for task in asyncio.all_tasks() if not task.done()]
    out.write(f"{len(tasks)} pending asyncio tasks\n")
    for task in tasks:
        out.write(f"--- {task.get_name()}\n")
        for line in _awaiting(task.get_coro()):
            out.write(f"    {line}\n")
    return out.getvalue()


@app.task
async def listen_for_dump_requests() -> None:
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: log.warning("task dump\n%s", dump_tasks())
    )
