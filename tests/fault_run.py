"""A bounded run of the mesh under a fault, and the checks every fault test ends with.

A run sends N cycles whose course the scripted LLM fixes in advance (pass at once, pass after one
fix, give up after the whole retry budget), starts workers that share one `tables/` folder, and
in the end checks that every cycle finished exactly once with exactly its attempts.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd

from aimesh.cycle.records import Task
from aimesh.embedded.processes import free_port
from testbed.kafka_io import produce
from testbed.mesh import MAX_FIXES, Worker, json_key, worker_env
from testbed.mesh_tasks import new_task

# marker -> (attempts, outcome) the scripted LLM makes of it
EXPECTED = {"[pass]": (1, "passed"), "[fix]": (2, "passed"), "[fail]": (MAX_FIXES + 1, "gave_up")}

# Recovery figures of this session, printed at the end of the run (see conftest).
RECOVERY: list[str] = []


def record_recovery(test: str, broker: str, **seconds: float) -> None:
    figures = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    RECOVERY.append(f"{test} [{broker}]: {figures}")


class MeshRun:
    """N planned cycles, the workers processing them, and where their rows appear."""

    def __init__(self, root: Path, broker_url: str, llm_host: str, cycles: int, **env: str):
        self.root = root
        self.broker_url = broker_url
        self.llm_host = llm_host
        self.env = env
        self.tables = root / "tables"
        self.tasks: list[Task] = []
        self.markers: dict[str, str] = {}
        self.plan(cycles)
        self.workers: list[Worker] = []

    def plan(self, cycles: int) -> list[Task]:
        """Add `cycles` more planned cycles, a third of each kind; return them."""
        markers = itertools.islice(itertools.cycle(EXPECTED), cycles)
        tasks = [new_task(marker) for marker in markers]
        self.tasks += tasks
        self.markers |= {task.cycle_id: task.title.split()[0] for task in tasks}
        return tasks

    def add_worker(self) -> Worker:
        """Start one more worker of the same app (own data dir and port, shared tables)."""
        home = self.root / f"worker-{len(self.workers) + 1}"
        home.mkdir()
        port = free_port()
        env = worker_env(home, self.broker_url, self.llm_host, port)
        env.update(AIMESH_TABLES_DIR=str(self.tables), **self.env)
        worker = Worker(home, env, port)
        worker.start()
        self.workers.append(worker)
        return worker

    def task_file(self) -> Path:
        """The planned tasks as a task file (JSONL), for the Producer to read."""
        path = self.root / "tasks.jsonl"
        fields = ("title", "description", "function_name", "signature")
        lines = [
            json.dumps(
                {"id": t.cycle_id, "tests": t.tests.splitlines()}
                | {name: getattr(t, name) for name in fields}
            )
            for t in self.tasks
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    def send(self, tasks: list[Task] | None = None) -> None:
        """Send the given tasks (all planned ones by default) to `ai_topic`."""
        tasks = self.tasks if tasks is None else tasks
        messages = [(json_key(task.cycle_id), task.dumps()) for task in tasks]
        produce(self.broker_url, "ai_topic", *messages)

    def _frame(self, name: str) -> pd.DataFrame:
        path = self.tables / name
        if not path.exists() or not path.stat().st_size:
            return pd.DataFrame(columns=["cycle_id"])
        frame = pd.read_csv(path, dtype={"cycle_id": str}, keep_default_na=False)
        return frame[frame["cycle_id"].isin(self.markers)]

    def finished(self) -> int:
        return int(self._frame("cycles.csv")["cycle_id"].nunique())

    def attempt_rows(self) -> int:
        return len(self._frame("attempts.csv"))

    def logs(self, lines: int = 40) -> str:
        return "\n\n".join(f"--- {w.root.name}\n{w.log_tail(lines)}" for w in self.workers)

    def stalled(self, what: str, timeout: float) -> AssertionError:
        """The failure of a run that stopped: each live worker's task dump (SIGUSR1) and log."""
        dumps = [
            f"--- {worker.root.name}\n{worker.dump()}"
            for worker in self.workers
            if worker.process and worker.process.poll() is None
        ]
        return AssertionError(
            f"{what}: not within {timeout} s\n{self.logs(60)}\n" + "\n".join(dumps)
        )

    def wait_for(self, what: str, done: Callable[[], bool], timeout: float) -> float:
        """Seconds until `done()` holds; fail with every worker's log after `timeout`."""
        started = time.monotonic()
        while not done():
            if time.monotonic() - started > timeout:
                raise self.stalled(what, timeout)
            time.sleep(0.2)
        return time.monotonic() - started

    def wait_progress(self, timeout: float = 120) -> float:
        """Seconds until one more attempt row is archived."""
        before = self.attempt_rows()
        return self.wait_for("a new attempt row", lambda: self.attempt_rows() > before, timeout)

    def wait_finished(self, timeout: float = 90) -> float:
        total = len(self.tasks)
        return self.wait_for(f"all {total} cycles", lambda: self.finished() == total, timeout)

    def recover_and_finish(self) -> tuple[float, float]:
        """After a fault: seconds to the first new attempt row, then to the last cycle; the run
        is checked at the end."""
        resumed = self.wait_progress()
        finished = self.wait_finished()
        self.check()
        return resumed, finished

    def check(self) -> None:
        """Every cycle exactly once, with its attempts 1..n exactly once and the planned outcome."""
        cycles = self._frame("cycles.csv")
        counted = Counter(cycles["cycle_id"])
        assert sorted(counted) == sorted(self.markers), "cycles missing from cycles.csv"
        assert set(counted.values()) == {1}, f"cycles archived twice: {counted.most_common(3)}"
        attempts = self._frame("attempts.csv")
        for row in cycles.to_dict("records"):
            cycle_id = row["cycle_id"]
            planned_attempts, planned_outcome = EXPECTED[self.markers[cycle_id]]
            assert (row["outcome"], int(row["attempts"])) == (planned_outcome, planned_attempts)
            numbers = sorted(int(n) for n in attempts[attempts["cycle_id"] == cycle_id]["attempt"])
            assert numbers == list(range(1, planned_attempts + 1)), f"{cycle_id}: {numbers}"

    def assigned(self, worker: Worker) -> list[int]:
        """The partitions of `ai_topic` this worker holds now ([] when it cannot say)."""
        try:
            status = httpx.get(f"{worker.web}/api/status", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return []
        return list(status["parts"]["broker"]["assigned"].get("ai_topic", []))

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
