"""The Procfile: `honcho start` runs the parts as separate processes, `broker`, `llm`, `worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aimesh.embedded.processes import free_port
from tests.conftest import processes_with

ROOT = Path(__file__).resolve().parents[1]


def test_procfile_names_exactly_broker_llm_worker():
    names = [line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines()]
    assert names == ["broker", "llm", "worker"]


def test_honcho_starts_the_three_parts_and_the_worker_uses_them(tmp_path):
    web, broker, llm = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMESH_", "OLLAMA_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        AIMESH_BROKER_PORT=str(broker), AIMESH_LLM_PORT=str(llm), AIMESH_WEB_PORT=str(web),
        AIMESH_MAX_TASKS="0", AIMESH_DATA_DIR=str(tmp_path / "data"),
        AIMESH_TABLES_DIR=str(tmp_path / "tables"),
    )  # fmt: skip
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "start"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        status = _wait_json(f"http://127.0.0.1:{web}/api/status", 120, honcho)
        assert status["parts"]["broker"]["url"] == f"kafka://127.0.0.1:{broker}"
        assert status["parts"]["llm"]["host"] == f"http://127.0.0.1:{llm}"
        tags = httpx.get(f"http://127.0.0.1:{llm}/api/tags").json()
        assert {"smollm2:135m", "e5-small"} <= {model["name"] for model in tags["models"]}
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        output, _ = honcho.communicate(timeout=60)
    for name in ("broker.1", "llm.1", "worker.1"):
        assert f"{name} " in output or f"{name}|" in output, output[-3000:]
    assert not processes_with(f"AIMESH_DATA_DIR={env['AIMESH_DATA_DIR']}"), "all parts stopped"


def _wait_json(url: str, timeout: float, process: subprocess.Popen[str]) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "honcho stopped early"
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s")
