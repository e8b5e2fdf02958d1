"""Helpers for every part that starts a process (the embedded broker, the embedded LLM server,
and the tests and benches that start workers): a free port, one way to wait until it answers,
and one way to stop it with whatever it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _listens(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    return wait_until(lambda: _listens(host, port), timeout, every=0.05)


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a process started in its own session, with whatever it started in turn: the whole
    group gets SIGTERM, and SIGKILL if it is still there after `timeout` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
