"""A real mesh to drive from tests and benches: the scripted LLM on its own thread, one
`aimesh worker` process with the environment that points it at a broker and that LLM, and the
keys the mesh's topics use."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from operator import itemgetter
from pathlib import Path
from typing import Any

import httpx

from aimesh.archive import CycleArchive
from aimesh.cli import LOOP_VARIABLES
from aimesh.embedded.processes import free_port
from testbed.scripted_llm import CHAT_MODEL, EMBED_MODEL, ScriptedLLM, serve

MAX_FIXES = 2


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
    env = {  # the worker's own loop choice (uvloop) is under test: no FAUST_LOOP/F_LOOP
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIMESH_") and k not in LOOP_VARIABLES
    }
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


def json_key(cycle_id: str) -> bytes:
    """Keys are JSON on the mesh (Faust's key_serializer='json')."""
    return json.dumps(cycle_id).encode()
