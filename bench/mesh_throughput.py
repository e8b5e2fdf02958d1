"""What the mesh costs: cycles/s and cycle latency through the whole mesh vs a plain loop.

Both sides do the same work per cycle with an instant scripted LLM (served over Ollama's HTTP
API): recall from memory, ask for code, extract it, run it in the sandbox, review it, remember
failures, fix while the budget lasts, and archive the rows as CSV. The mesh side does it through
the embedded broker and one real `aimesh worker` process; the in-process side calls the same
engines in one asyncio loop. The ratio between the two is the price of broker, Faust, topics and
tables. Run from the repo root: `python bench/mesh_throughput.py [--cycles N] [--fix-share F]`.

Latency is a cycle's `finished_at - started_at` from `cycles.csv`, with `started_at` stamped when
the task is sent. All N tasks arrive at once on both sides, so latency includes queueing. Then
ALONE more tasks (no fix) go one at a time, each once the last has finished: one unloaded
cycle's latency, end to end (target on the mesh: at most 150 ms).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from aiokafka import AIOKafkaProducer

from aimesh.archive import CycleArchive
from aimesh.cli import worker_event_loop
from aimesh.cycle.pipeline import Pipeline
from aimesh.cycle.records import Task, now
from aimesh.embedded.broker import start_tansu
from aimesh.embedded.processes import free_port, stop
from aimesh.llm.client import LLM
from aimesh.memory import open_memory
from aimesh.sandbox import configure
from aimesh.settings import Settings
from testbed.kafka_io import produce
from testbed.mesh import LLMThread, Worker, json_key, worker_env
from testbed.mesh_tasks import new_task

TASKS_TOPIC = "ai_topic"
ALONE = 5  # lone cycles, sent one at a time after the burst
TARGET_ALONE_MS = 150.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")
MACHINE = "whole machine"
"""Every process's CPU in the measured window, sandbox runs included (a fork server's children
are reaped by the fork server, so no per-process figure holds them)."""


# ---------------------------------------------------------------- shared: tasks and figures


def task_mix(count: int, fix_share: float, prefix: str) -> list[Task]:
    """`count` tasks with `fix_share` of them `[fix]`, spread evenly so both sides see one order."""
    tasks = []
    for i in range(count):
        is_fix = int((i + 1) * fix_share) > int(i * fix_share)
        marker = "[fix]" if is_fix else "[pass]"
        tasks.append(new_task(marker, cycle_id=f"{prefix}-{i:05d}-{marker.strip('[]')}"))
    return tasks


def stamped(task: Task) -> Task:
    """The task as sent: `created_at` is the cycle's start in `cycles.csv`."""
    return Task(**{**task.asdict(), "created_at": now()})


def count_rows(path: Path) -> int:
    """Rows in a CSV archive, cheaply (no field holds a newline), for polling."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return max(data.count(b"\n") - 1, 0)


@dataclass
class SideResult:
    """One side's measured run: what every figure in the table is computed from."""

    name: str
    expected: int
    wall_s: float
    latencies_s: list[float]
    missing: list[str]
    outcomes: Counter[str]
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies_s) / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) * 1000 if self.latencies_s else 0.0


def collect(name: str, tables: Path, sent: Sequence[Task], wall_s: float) -> SideResult:
    """Latency and outcome of each sent cycle, from the archive exactly as a user reads it."""
    rows = {row["cycle_id"]: row for row in CycleArchive(tables).cycles.read().to_dict("records")}
    ids = [task.cycle_id for task in sent]
    found = [rows[cycle_id] for cycle_id in ids if cycle_id in rows]
    return SideResult(
        name=name,
        expected=len(ids),
        wall_s=wall_s,
        latencies_s=[float(r["finished_at"]) - float(r["started_at"]) for r in found],
        missing=[cycle_id for cycle_id in ids if cycle_id not in rows],
        outcomes=Counter(f"{r['outcome']}/{r['attempts']}" for r in found),
    )


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its reaped children, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = text.rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK  # utime stime cutime cstime


def machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy so far (user, nice, system, irq, softirq):
    the broker, the worker, the sandbox runs and the bench alike, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / CLK_TCK


def run_like_a_worker(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on the event loop `aimesh worker` runs on, so both sides pay for the same loop."""
    if worker_event_loop() == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def own_cpu_s() -> float:
    """This process's CPU seconds, the LLM thread's included (the sandbox runs are reaped by the
    fork servers, so they are counted only in the whole machine's figure)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


# ---------------------------------------------------------------- in-process side


def pipeline(settings: Settings, tables: Path) -> Pipeline:
    """The engines the worker builds from the same settings (aimesh.services), in this process."""
    llm = LLM(
        settings.ollama_host,
        settings.chat_model,
        settings.embed_model,
        timeout=settings.llm_timeout,
    )
    memory = open_memory(
        llm.embed,
        settings.embed_model,
        url=None,
        path=settings.memory_path,
        collection=settings.memory_collection,
    )
    return Pipeline(
        llm=llm,
        memory=memory,
        sandbox=configure(settings.sandbox_pool_config()),
        limits=settings.sandbox_limits,
        archive=CycleArchive(tables),
        max_fixes=settings.max_fixes,
        memory_k=settings.memory_k,
        fix_model=settings.fix_model,
    )


async def _inprocess(
    settings: Settings, tables: Path, warmup: list[Task], tasks: list[Task], alone: list[Task]
) -> tuple[float, dict[str, float]]:
    cycles = pipeline(settings, tables)
    try:
        for task in warmup:
            await cycles.cycle(stamped(task))
        cpu0, machine0 = own_cpu_s(), machine_busy_s()
        started = time.perf_counter()
        arrived = [stamped(task) for task in tasks]  # all arrive at once, as on Kafka
        for task in arrived:
            await cycles.cycle(task)
        wall = time.perf_counter() - started
        cpu1, machine1 = own_cpu_s(), machine_busy_s()
        for task in alone:  # one at a time, nothing else running
            await cycles.cycle(stamped(task))
    finally:
        await cycles.memory.close()
        await cycles.llm.close()
    return wall, {
        "bench process (loop + LLM thread)": cpu1 - cpu0,
        MACHINE: machine1 - machine0,
    }


def run_inprocess(
    env: dict[str, str], root: Path, warmup: list[Task], tasks: list[Task], alone: list[Task]
) -> tuple[SideResult, SideResult]:
    """The same N cycles in one asyncio loop, no broker, no Faust; then the lone cycles."""
    settings = Settings.from_env(env)
    tables = settings.tables_dir
    wall, cpu = run_like_a_worker(_inprocess(settings, tables, warmup, tasks, alone))
    result = collect("in-process", tables, tasks, wall)
    result.cpu = cpu
    return result, collect("in-process", tables, alone, 0.0)


# ---------------------------------------------------------------- mesh side


def wait_rows(worker: Worker, target: int, stall_s: float, poll_s: float = 0.02) -> float:
    """Block until cycles.csv has `target` rows; return when it did (perf_counter).

    Gives up after `stall_s` without a new row, or when the worker dies.
    """
    path = worker.tables / "cycles.csv"
    seen, last_change = -1, time.perf_counter()
    while True:
        rows = count_rows(path)
        tick = time.perf_counter()
        if rows >= target:
            return tick
        if rows != seen:
            seen, last_change = rows, tick
        if tick - last_change > stall_s:
            return tick
        if worker.process is None or worker.process.poll() is not None:
            raise RuntimeError(f"the worker exited\n{worker.log_tail()}")
        time.sleep(poll_s)


async def _burst(url: str, tasks: list[Task]) -> float:
    """Send every task at once through one producer; return when the first was sent."""
    producer = AIOKafkaProducer(bootstrap_servers=url.split("://", 1)[1])
    await producer.start()
    try:
        started = time.perf_counter()
        sends = []
        for task in tasks:
            sent = stamped(task)
            sends.append(
                await producer.send(TASKS_TOPIC, key=json_key(sent.cycle_id), value=sent.dumps())
            )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return started


def run_alone(worker: Worker, url: str, alone: list[Task], stall_s: float) -> SideResult:
    """Each task sent alone, the next once the last has its row: one unloaded cycle's latency."""
    path = worker.tables / "cycles.csv"
    for task in alone:
        rows = count_rows(path)
        produce(url, TASKS_TOPIC, (json_key(task.cycle_id), stamped(task).dumps()))
        wait_rows(worker, rows + 1, stall_s=stall_s, poll_s=0.002)
    return collect("mesh", worker.tables, alone, 0.0)


def run_mesh(
    worker: Worker, broker_pid: int, url: str, warmup: list[Task], tasks: list[Task], stall_s: float
) -> SideResult:
    """Warm the worker up (start-up, rebalance, topic creation), then time a burst of N tasks."""
    path = worker.tables / "cycles.csv"
    produce(url, TASKS_TOPIC, *[(json_key(t.cycle_id), stamped(t).dumps()) for t in warmup])
    wait_rows(worker, count_rows(path) + len(warmup), stall_s=max(stall_s, 90))
    baseline = count_rows(path)
    assert worker.process is not None
    worker_cpu0, broker_cpu0, own0, machine0 = (
        proc_cpu_s(worker.process.pid),
        proc_cpu_s(broker_pid),
        own_cpu_s(),
        machine_busy_s(),
    )
    started = asyncio.run(_burst(url, tasks))
    finished = wait_rows(worker, baseline + len(tasks), stall_s=stall_s)
    result = collect("mesh", worker.tables, tasks, finished - started)
    result.cpu = {
        "worker": proc_cpu_s(worker.process.pid) - worker_cpu0,
        "broker": proc_cpu_s(broker_pid) - broker_cpu0,
        "bench process (LLM thread)": own_cpu_s() - own0,
        MACHINE: machine_busy_s() - machine0,
    }
    return result


# ---------------------------------------------------------------- report


def report_alone(results: list[SideResult]) -> None:
    """One cycle alone (no fix, instant LLM), end to end: the median of the lone cycles."""
    shown = ", ".join(
        f"{r.name} p50 {r.percentile_ms(50):.0f} ms (of {len(r.latencies_s)})" for r in results
    )
    print(f"one cycle alone, no fix: {shown}; target on the mesh <= {TARGET_ALONE_MS:.0f} ms")


def report(n: int, fix_share: float, results: list[SideResult]) -> None:
    fixes = sum(int((i + 1) * fix_share) > int(i * fix_share) for i in range(n))
    print(f"machine: nproc={os.cpu_count()}  N={n} cycles ({fixes} [fix], {n - fixes} [pass])")
    for result in results:
        shown = ", ".join(f"{name} {secs:.1f} s" for name, secs in result.cpu.items())
        print(f"cpu {result.name}: {shown}")
        if result.missing:
            print(f"{result.name}: {len(result.missing)} of {result.expected} cycles MISSING")
        unexpected = {k: v for k, v in result.outcomes.items() if not k.startswith("passed/")}
        if unexpected:
            print(f"{result.name}: unexpected outcomes {unexpected}")
    cores = os.cpu_count() or 1
    for r in results:
        if r.latencies_s and MACHINE in r.cpu:
            per_cycle = r.cpu[MACHINE] / len(r.latencies_s) * 1000
            print(
                f"{r.name}: {per_cycle:.1f} ms of machine CPU per cycle, so at most "
                f"{cores * 1000 / per_cycle:.0f} cycles/s on {cores} cores"
            )
    print("latency: created_at at send -> cycle's last verdict/review (cycles.csv); all N sent at")
    print("once on both sides, so it includes queueing; wall: first send -> last cycle row")
    print()
    print(f"{'':<12}{'cycles/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'wall s':>9}{'done':>9}")
    for r in results:
        print(
            f"{r.name:<12}{r.rate:>10.2f}{r.percentile_ms(50):>10.0f}{r.percentile_ms(95):>10.0f}"
            f"{r.wall_s:>9.1f}{len(r.latencies_s):>5}/{r.expected:<3}"
        )
    mesh, local = results
    if local.rate and local.latencies_s and mesh.latencies_s:
        print(
            f"ratios: mesh / in-process throughput {mesh.rate / local.rate:.3f}; "
            f"latency p50 {mesh.percentile_ms(50) / local.percentile_ms(50):.2f}x, "
            f"p95 {mesh.percentile_ms(95) / local.percentile_ms(95):.2f}x"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200, help="measured cycles per side")
    parser.add_argument("--fix-share", type=float, default=0.25, help="share of [fix] tasks")
    parser.add_argument("--warmup", type=int, default=4, help="uncounted cycles first")
    parser.add_argument("--stall", type=float, default=60.0, help="give up after s without rows")
    args = parser.parse_args(argv)
    if args.cycles < 1 or not 0.0 <= args.fix_share <= 1.0 or args.warmup < 1:
        parser.error("need --cycles >= 1, --warmup >= 1 and 0 <= --fix-share <= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run = f"b{int(time.time())}"
    warmup = task_mix(args.warmup, 0.5, f"{run}-warm")
    tasks = task_mix(args.cycles, args.fix_share, run)
    alone = task_mix(ALONE, 0.0, f"{run}-alone")
    llm = LLMThread().start()
    broker = worker = None
    with tempfile.TemporaryDirectory(prefix="aimesh-bench-") as tmp:
        root = Path(tmp)
        try:
            (root / "inproc").mkdir()
            env = worker_env(root / "inproc", "kafka://127.0.0.1:9", llm.host, free_port())
            local, local_alone = run_inprocess(env, root / "inproc", warmup, tasks, alone)

            broker, url = start_tansu()
            (root / "mesh").mkdir()
            port = free_port()
            worker = Worker(root / "mesh", worker_env(root / "mesh", url, llm.host, port), port)
            worker.start()
            mesh = run_mesh(worker, broker.pid, url, warmup, tasks, args.stall)
            mesh_alone = run_alone(worker, url, alone, args.stall)
        except (AssertionError, RuntimeError) as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        finally:
            if worker is not None:
                worker.stop()
            if broker is not None:
                stop(broker)
            llm.stop()
    report(args.cycles, args.fix_share, [mesh, local])
    report_alone([mesh_alone, local_alone])
    return 1 if mesh.missing or local.missing or mesh_alone.missing else 0


if __name__ == "__main__":
    sys.exit(main())
