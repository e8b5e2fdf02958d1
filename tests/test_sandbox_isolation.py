"""Which layers the sandbox runs with: the safest available, a fallback, or a clear refusal.

Landlock is switched off by configuration here to act as an older kernel would; bubblewrap is
the fallback, and with neither the engine refuses unless the user opts into an unsafe mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from aimesh.cli import sandbox_refusal
from aimesh.sandbox import Limits, PoolConfig, SandboxUnavailable, ServerPool, run_program

FAST = Limits(timeout_s=3, cpu_s=2)


async def _statuses(pool: ServerPool, programs: list[str]) -> list[str]:
    return [(await run_program(p, FAST, pool)).status for p in programs]


@pytest.mark.asyncio
async def test_the_default_is_landlock_seccomp_and_no_capabilities() -> None:
    pool = ServerPool(PoolConfig(servers=1))
    try:
        result = await run_program("x = 1", FAST, pool)
    finally:
        pool.close()
    assert result.passed
    for layer in ("landlock-fs", "landlock-net", "landlock-scope", "seccomp", "no-capabilities"):
        assert layer in result.layers
    assert not any(layer.startswith("UNSAFE") for layer in result.layers)


@pytest.mark.asyncio
async def test_without_landlock_or_bwrap_it_refuses_and_says_how_to_proceed() -> None:
    pool = ServerPool(PoolConfig(servers=1, landlock=False, bwrap=False))
    with pytest.raises(SandboxUnavailable) as refused:
        await run_program("x = 1", FAST, pool)
    pool.close()
    message = str(refused.value)
    assert "landlock-fs" in message and "bubblewrap" in message
    assert "AIMESH_SANDBOX_UNSAFE=1" in message


@pytest.mark.asyncio
async def test_the_unsafe_opt_in_runs_and_names_what_is_missing() -> None:
    pool = ServerPool(PoolConfig(servers=1, landlock=False, bwrap=False, unsafe=True))
    host = subprocess.Popen(["sleep", "30"])
    signals = [  # without Landlock's scoping, only seccomp stands between a run and the host
        f"import os\nos.kill({host.pid}, 9)",
        f"import fcntl, os\nr, w = os.pipe()\nfcntl.fcntl(r, fcntl.F_SETOWN, {host.pid})",
    ]
    try:
        result = await run_program("x = 1", FAST, pool)
        statuses = await _statuses(pool, ["import socket\nsocket.socket()", *signals])
    finally:
        pool.close()
        alive = host.poll() is None
        host.kill()
        host.wait()
    assert result.passed
    assert "UNSAFE-missing-landlock-fs" in result.layers and "landlock-fs" not in result.layers
    assert statuses == ["forbidden"] * 3 and alive


@pytest.mark.asyncio
async def test_bubblewrap_stands_in_for_landlock() -> None:
    if shutil.which("bwrap") is None:
        pytest.fail("needs bubblewrap (bwrap): make test installs it")
    pool = ServerPool(PoolConfig(servers=1, landlock=False))
    secret = "print(open('/etc/shadow').read())"
    outside = "open('/usr/aimesh-escaped', 'w').write('x')"
    project = f"print(open({__file__!r}).read())"
    network = "import socket\nsocket.create_connection(('127.0.0.1', 9))"
    server_memory = "import os\nopen(f'/proc/{os.getppid()}/mem', 'rb').read(1)"
    base = "import os\nopen(os.path.join(os.path.dirname(os.getcwd()), 'left'), 'w')"
    programs = [secret, outside, project, network, server_memory, base, "assert 1 + 1 == 2"]
    try:
        first = await run_program("x = 1", FAST, pool)
        statuses = await _statuses(pool, programs)
    finally:
        pool.close()
    assert "bubblewrap" in first.layers and "landlock-fs" not in first.layers
    # Files outside what bubblewrap shows are simply not there: error (FileNotFoundError).
    assert statuses == ["error", "forbidden", "error", "forbidden", "error", "forbidden", "passed"]


def test_a_worker_will_not_start_where_the_sandbox_would_refuse() -> None:
    assert "AIMESH_SANDBOX_UNSAFE=1" in sandbox_refusal(PoolConfig(landlock=False, bwrap=False))
    assert sandbox_refusal(PoolConfig(servers=1)) == ""


def test_an_engine_killed_outright_leaves_no_scratch_behind() -> None:
    script = (
        "import asyncio, os, signal\n"
        "from aimesh.sandbox import ServerPool, PoolConfig, run_program\n"
        "pool = ServerPool(PoolConfig(servers=1))\n"
        'asyncio.run(run_program(\'open("left.txt", "w").write("x")\', servers=pool))\n'
        "print(pool._servers[0].base, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    base = killed.stdout.strip()
    deadline = time.monotonic() + 5
    while os.path.exists(base) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert base and not os.path.exists(base)
