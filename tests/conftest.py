"""Shared fixtures: a real broker (Tansu, over a real connection), a scripted LLM served over
Ollama's HTTP API, and one real mesh worker process pointed at both, as a user would run it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import httpx
import pytest

from aimesh.archive import CycleArchive
from aimesh.embedded.broker import start_tansu
from aimesh.embedded.processes import free_port, stop
from tests.scripted_llm import CHAT_MODEL, EMBED_MODEL, ScriptedLLM, serve

MAX_FIXES = 2
KAFKA_TIER = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs Apache Kafka (scripts/kafka.sh, Java 17+)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the real-Kafka tier wherever Java can run Kafka; say plainly why when it cannot.
    Under CI=true a missing tier is an error, not a skip."""
    tier = [item for item in items if item.get_closest_marker("kafka")]
    if not tier:
        return
    from tests.kafka_cluster import VERSION, unavailable

    reason = unavailable()
    config.stash[KAFKA_TIER] = f"skipped: {reason}" if reason else f"on (Apache Kafka {VERSION})"
    if not reason:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI runs the real-Kafka tier, and it cannot run: {reason}")
    for item in tier:
        item.add_marker(pytest.mark.skip(reason=f"real-Kafka tier skipped: {reason}"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from tests.fault_run import RECOVERY

    if KAFKA_TIER in config.stash:
        terminalreporter.write_line(f"real-Kafka tier: {config.stash[KAFKA_TIER]}")
    if RECOVERY:
        terminalreporter.section("recovery times measured by the fault tests")
        for line in RECOVERY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """The embedded Tansu, or the broker AIMESH_TEST_BROKER_URL names (e.g. a real Kafka from
    scripts/kafka.sh), so the same tests run against either."""
    external = os.environ.get("AIMESH_TEST_BROKER_URL")
    if external:
        yield external
        return
    process, url = start_tansu()
    yield url
    stop(process)


class LLMThread:
    """The scripted LLM on its own event loop, so tests may block without starving it."""

    def __init__(self, delay: float = 0.0) -> None:
        self.llm = ScriptedLLM(delay)
        self.port = free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._runner: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = self._loop.run_until_complete(serve(self.llm, self.port))
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> LLMThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def pause(self) -> None:
        """Stop answering (connections are refused), as an LLM server that went down."""
        self._call(self._runner.cleanup())

    def resume(self) -> None:
        """Answer again on the same port."""
        self._runner = self._call(serve(self.llm, self.port))

    def stop(self) -> None:
        self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="session")
def scripted_llm() -> Iterator[LLMThread]:
    server = LLMThread().start()
    yield server
    server.stop()


class Worker:
    """A running `aimesh worker` process and the places where its results appear."""

    def __init__(self, root: Path, env: dict[str, str], web_port: int) -> None:
        self.root = root
        self.env = env
        self.web = f"http://127.0.0.1:{web_port}"
        self.tables = Path(env["AIMESH_TABLES_DIR"])
        self.archive = CycleArchive(self.tables)
        self.log = root / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aimesh", "worker"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                start_new_session=True,
            )  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process and self.process.poll() is None, self.log_tail()
            try:
                if httpx.get(f"{self.web}/api/status", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout} s\n{self.log_tail()}")

    def kill(self) -> None:
        """kill -9 of the worker and everything it started, as when its machine dies."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def dump(self, timeout: float = 20) -> str:
        """What the live worker logs on SIGUSR1 (aimesh.stream.diagnostics): its task dump and its
        consumer's state, written in one log record; "" if none came within `timeout`."""
        start = self.log.stat().st_size if self.log.exists() else 0
        assert self.process and self.process.poll() is None, "the worker is not running"
        os.kill(self.process.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            time.sleep(0.2)
            text = self.log.read_bytes()[start:].decode(errors="replace")  # start is in bytes
            dump = text[text.find("task dump") :] if "task dump" in text else ""
            state = max(dump.find("\nconsumer: "), dump.find("consumer state unavailable"))
            if state < 0:
                continue
            after = dump.find("\n[", state)  # the next log record: the dump is complete
            if after >= 0:
                return dump[:after]
            if dump == seen:  # nothing logged since: complete as well
                return dump
            seen = dump
        return ""

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cycles(self) -> list[dict[str, Any]]:
        return self.archive.cycles.read().to_dict("records")

    def attempts(self, cycle_id: str) -> list[dict[str, Any]]:
        """The cycle's attempt rows in order, `attempt` as a number."""
        frame = self.archive.attempts.read()
        rows = frame[frame["cycle_id"] == cycle_id].to_dict("records")
        return sorted(
            ({**row, "attempt": int(row["attempt"])} for row in rows), key=itemgetter("attempt")
        )

    def wait_cycle(self, cycle_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [row for row in self.cycles() if row["cycle_id"] == cycle_id]
            if found:
                return found[0]
            assert self.process and self.process.poll() is None, self.log_tail()
            time.sleep(0.2)
        raise AssertionError(f"cycle {cycle_id} did not finish in {timeout} s\n{self.log_tail()}")


def worker_env(root: Path, broker_url: str, llm_host: str, web_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMESH_")}
    env.update(
        AIMESH_BROKER_URL=broker_url,
        OLLAMA_HOST=llm_host,
        AIMESH_CHAT_MODEL=CHAT_MODEL,
        AIMESH_EMBED_MODEL=EMBED_MODEL,
        AIMESH_DATA_DIR=str(root / "data"),
        AIMESH_TABLES_DIR=str(root / "tables"),
        AIMESH_MAX_TASKS="0",
        AIMESH_MAX_FIXES=str(MAX_FIXES),
        AIMESH_WEB_PORT=str(web_port),
        AIMESH_SANDBOX_TIMEOUT="5",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return env


@pytest.fixture(scope="session")
def worker(
    tmp_path_factory: pytest.TempPathFactory, broker_url: str, scripted_llm: LLMThread
) -> Iterator[Worker]:
    root = tmp_path_factory.mktemp("mesh")
    port = free_port()
    running = Worker(root, worker_env(root, broker_url, scripted_llm.host, port), port)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def json_key(cycle_id: str) -> bytes:
    """Keys are JSON on the mesh (Faust's key_serializer='json')."""
    return json.dumps(cycle_id).encode()


def processes_with(marker: str) -> list[str]:
    """Processes whose environment holds `marker`: everything `aimesh up` started inherits it."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found
