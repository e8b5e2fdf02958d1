"""The sandbox engine end to end: real child processes, small limits so the file stays fast."""

from __future__ import annotations

import asyncio
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from aimesh.sandbox import (
    STATUSES,
    Limits,
    PoolConfig,
    RunResult,
    ServerPool,
    build_program,
    run_program,
)

ADD = "def add(a, b):\n    return a + b\n"
WRONG_ADD = "def add(a, b):\n    return a - b\n"
HUMANEVAL_TESTS = textwrap.dedent(
    """
    METADATA = {"author": "jt", "dataset": "test"}


    def check(candidate):
        assert candidate(2, 3) == 5
        assert candidate(-1, 1) == 0
    """
)


@pytest.mark.asyncio
async def test_passing_program() -> None:
    result = await run_program(build_program(ADD + "print('hi')", "assert add(1, 2) == 3"))
    assert result.status == "passed" and result.passed
    assert result.exit_code == 0 and result.error_type == "" and result.error_line is None
    assert result.stdout == "hi\n"
    assert result.duration_ms > 0
    assert result.to_dict()["status"] == "passed"


@pytest.mark.asyncio
async def test_failed_assertion_names_the_line() -> None:
    program = build_program(WRONG_ADD, "assert add(1, 1) == 0\nassert add(1, 2) == 3")
    result = await run_program(program)
    assert result.status == "failed" and not result.passed
    assert result.error_type == "AssertionError"
    assert result.error.startswith("add(1, 2) returned -1, expected 3 at line")
    assert result.error.endswith(": assert add(1, 2) == 3"), "the test's line as written"
    line = program.splitlines().index("assert add(1, 2) == 3") + 1
    assert result.error_line == line


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("test", "message"),
    [
        ("assert 3 == add(1, 2)", "add(1, 2) returned -1, expected 3"),
        ("assert add(2, 2) != 0", "add(2, 2) returned 0, expected anything but 0"),
        ("assert add(1, 2) == 3, 'own message'", "add(1, 2) returned -1, expected 3"),
    ],
)
async def test_a_failed_comparison_says_what_the_call_returned(test: str, message: str) -> None:
    result = await run_program(build_program(WRONG_ADD, test))
    assert result.status == "failed"
    assert message in result.error


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "tests", "status"),
    [
        # the comparison runs as written, left to right: inc() runs after c[0] is read
        ("c = [0]\ndef inc():\n    c[0] += 1\n    return c[0]\n", "assert c[0] == inc()", "failed"),
        # an __eq__ answering 2 is true, as plain Python takes it
        (
            "class W:\n    def __eq__(s, o):\n        return 2\ndef f():\n    return W()\n",
            "assert f() == 1",
            "passed",
        ),
        # a solution defining the message helper changes a message, never a verdict
        (
            "_aimesh_expect_ = lambda *a: True\ndef f():\n    return 1\n",
            "assert f() == 2",
            "failed",
        ),
        # too deep for the rewrite: the program runs as written
        (
            "def f():\n    return 1\n",
            "x = " + "+".join(["1"] * 800) + "\nassert f() == 1",
            "passed",
        ),
    ],
)
async def test_explaining_a_comparison_never_changes_its_verdict(
    code: str, tests: str, status: str
) -> None:
    assert (await run_program(build_program(code, tests))).status == status


@pytest.mark.asyncio
async def test_a_long_returned_value_is_cut_short() -> None:
    result = await run_program(
        build_program("def big():\n    return 'x' * 5000\n", "assert big() == ''")
    )
    assert result.error.startswith("big() returned 'xxx")
    assert "..., expected ''" in result.error and len(result.error) < 500


@pytest.mark.asyncio
async def test_comparisons_that_hold_and_others_are_left_alone() -> None:
    tests = (
        "assert add(1, 2) == 3\nassert abs(add(1, 2) - 3) < 1e-9\nx = [add(1, 1)]\nassert x == [2]"
    )
    assert (await run_program(build_program(ADD, tests))).passed
    result = await run_program(build_program(ADD, "assert [add(1, 1)] == [3]"))
    assert result.error.startswith("at line") or "assert [add(1, 1)] == [3]" in result.error


@pytest.mark.asyncio
async def test_the_preamble_runs_before_the_solution() -> None:
    preamble = "from typing import List\n\ndef helper(x):\n    return x * 2\n"
    code = "def double_all(xs: List[int]) -> List[int]:\n    return [helper(x) for x in xs]\n"
    tests = "assert double_all([1, 2]) == [2, 4]"
    without = await run_program(build_program(code, tests))
    assert without.error_type == "NameError" and "List" in without.error
    assert (await run_program(build_program(code, tests, preamble=preamble))).passed


@pytest.mark.asyncio
async def test_other_exception_is_an_error() -> None:
    program = "def div(a, b):\n    return a / b\n\nassert div(1, 0) == 0\n"
    result = await run_program(program)
    assert result.status == "error"
    assert result.error_type == "ZeroDivisionError"
    assert result.error_line == 2
    assert "division by zero" in result.error and "assert div(1, 0) == 0" in result.error
    assert "ZeroDivisionError" in result.stderr


@pytest.mark.asyncio
async def test_syntax_error() -> None:
    result = await run_program("x = 1\ndef f(:\n    pass\n")
    assert result.status == "error"
    assert result.error_type == "SyntaxError"
    assert result.error_line == 2


@pytest.mark.asyncio
async def test_wall_clock_timeout() -> None:
    result = await run_program("import time\ntime.sleep(60)\n", Limits(timeout_s=0.5))
    assert result.status == "timeout" and result.error_type == "Timeout"
    assert result.duration_ms < 3000


@pytest.mark.asyncio
async def test_cpu_limit() -> None:
    result = await run_program("while True:\n    pass\n", Limits(cpu_s=1, timeout_s=8))
    assert result.status == "cpu_limit" and result.error_type == "CPULimit"
    assert result.duration_ms < 5000


@pytest.mark.asyncio
async def test_memory_limit() -> None:
    result = await run_program("x = bytearray(2 * 1024**3)\n", Limits(memory_mb=256))
    assert result.status == "memory_limit" and result.error_type == "MemoryError"
    assert result.error_line == 1


@pytest.mark.asyncio
async def test_file_size_limit() -> None:
    program = "with open('big', 'wb') as f:\n    f.write(b'x' * (3 * 1024 * 1024))\n"
    result = await run_program(program, Limits(file_size_mb=1))
    assert result.status == "output_limit" and result.error_type == "FileSizeLimit"


@pytest.mark.asyncio
async def test_output_flood_is_capped() -> None:
    result = await run_program("while True:\n    print('x' * 1000)\n", Limits(output_bytes=10_000))
    assert result.status == "output_limit" and result.error_type == "OutputLimit"
    assert 0 < len(result.stdout.encode()) <= 10_000


@pytest.mark.asyncio
async def test_exit_before_tests_is_not_a_pass() -> None:
    for early_exit in ("import sys\nsys.exit(0)", "exit()", "import os\nos._exit(0)"):
        result = await run_program(build_program(ADD + early_exit, "assert add(1, 2) == 4"))
        assert not result.passed, early_exit
        assert result.status == "error" and result.error_type == "SystemExit", early_exit


@pytest.mark.asyncio
async def test_environment_holds_only_the_scratch_dir() -> None:
    program = "import os\nassert dict(os.environ) == {'HOME': os.getcwd(), 'TMPDIR': os.getcwd()}\n"
    result = await run_program(program)
    assert result.passed, result.error


@pytest.mark.asyncio
async def test_scratch_dir_is_removed() -> None:
    result = await run_program("import os\nprint(os.getcwd())\nopen('junk.txt', 'w').write('x')\n")
    assert result.passed
    scratch = Path(result.stdout.strip())
    assert scratch.name.startswith("run-") and scratch.parent.name.startswith("aimesh-sandbox-")
    assert not scratch.exists()


@pytest.mark.asyncio
async def test_humaneval_check_format() -> None:
    assert (await run_program(build_program(ADD, HUMANEVAL_TESTS, "add"))).passed
    result = await run_program(build_program(WRONG_ADD, HUMANEVAL_TESTS, "add"))
    assert result.status == "failed"
    assert result.error.startswith("candidate(2, 3) returned -1, expected 5 at line")
    assert "(from line" in result.error and "check(add)" in result.error


@pytest.mark.asyncio
async def test_a_thread_left_running_does_not_hold_the_run() -> None:
    program = "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
    started = time.perf_counter()
    result = await run_program(program, Limits(timeout_s=5))
    assert result.passed, result.error
    assert time.perf_counter() - started < 3


@pytest.mark.asyncio
async def test_a_main_block_is_not_part_of_the_test() -> None:
    code = ADD + "\nif __name__ == '__main__':\n    print(add(int(input()), 1))\n"
    result = await run_program(build_program(code, "assert add(1, 2) == 3"))
    assert result.passed, result.error


@pytest.mark.asyncio
async def test_cancelling_a_run_leaves_the_server_serving_the_others() -> None:
    servers = ServerPool(PoolConfig(servers=1))
    try:
        await run_program("x = 1", Limits(), servers)  # started, so both runs share it
        slow = asyncio.create_task(run_program("import time\ntime.sleep(5)", Limits(), servers))
        quick = asyncio.create_task(run_program("print('next')", Limits(), servers))
        await asyncio.sleep(0.3)
        slow.cancel()
        result = await asyncio.wait_for(quick, 3)
        after = await asyncio.wait_for(run_program("print('after')", Limits(), servers), 3)
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert result.stdout == "next\n" and after.stdout == "after\n"
        assert len(servers._servers) == 1 and not servers._servers[0].closed
    finally:
        servers.close()


@pytest.mark.asyncio
async def test_each_run_gets_the_layers_it_ran_under() -> None:
    result = await run_program("x = 1")
    for layer in ("no-capabilities", "seccomp", "rlimits", "wall-timeout", "output-cap"):
        assert layer in result.layers
    assert "landlock-fs" in result.layers or "bubblewrap" in result.layers


def test_task_limits_override_within_ceilings() -> None:
    limits = Limits().with_overrides({"timeout_s": 30, "memory_mb": 1024.0})
    assert limits.timeout_s == 30 and limits.memory_mb == 1024
    with pytest.raises(ValueError, match="unknown sandbox limit"):
        Limits().with_overrides({"gpu": 1})
    with pytest.raises(ValueError, match="ceiling"):
        Limits().with_overrides({"memory_mb": 10**9})


def test_build_program_formats() -> None:
    assert build_program("x = 1", "assert x == 1") == "x = 1\n\n\nassert x == 1\n"
    assert build_program(ADD, HUMANEVAL_TESTS, "add").endswith("\ncheck(add)\n")
    assert "check(add)" not in build_program(ADD, "assert add(1, 1) == 2", "add")
    with pytest.raises(ValueError):
        build_program(ADD, HUMANEVAL_TESTS, "add); import os")


def test_limits_and_result_validate() -> None:
    with pytest.raises(ValueError, match="cpu_s"):
        Limits(cpu_s=0)
    with pytest.raises(ValueError, match="timeout_s"):
        Limits(timeout_s=float("nan"))
    with pytest.raises(ValueError, match="status"):
        RunResult(status="weird")
    assert RunResult(status="passed").passed and not RunResult(status="failed", passed=True).passed
    assert "forbidden" in STATUSES and "crashed" in STATUSES and "limit" not in STATUSES


@pytest.mark.asyncio
async def test_servers_are_pinned_to_cores_of_their_own_when_there_is_one_each() -> None:
    cores = sorted(os.sched_getaffinity(0))
    for count, pinned in ((len(cores), True), (len(cores) + 1, False)):
        servers = ServerPool(PoolConfig(servers=count))
        try:
            sleep = "import time\ntime.sleep(0.2)"
            await asyncio.gather(*(run_program(sleep, Limits(), servers) for _ in range(count)))
            found = [os.sched_getaffinity(server.proc.pid) for server in servers._servers]
        finally:
            servers.close()
        assert len(found) == count
        if pinned:
            assert sorted(next(iter(cpus)) for cpus in found) == cores
        else:
            assert all(sorted(cpus) == cores for cpus in found)


def test_bases_left_by_a_killed_engine_are_removed_and_live_ones_kept(tmp_path):
    from aimesh.sandbox.forkserver import remove_stale_bases

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"aimesh-sandbox-{dead.pid}-abc"
    (stale / "run-1").mkdir(parents=True)
    (stale / "run-1" / "left.txt").write_text("x")
    stale.chmod(0o500)  # as the server leaves its base
    live = tmp_path / f"aimesh-sandbox-{os.getpid()}-def"
    live.mkdir()
    assert remove_stale_bases(str(tmp_path)) == 1
    assert not stale.exists() and live.exists()
