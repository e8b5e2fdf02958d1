"""`aimesh up`: starts what is missing (here the embedded broker), runs, and stops cleanly."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from aimesh.archive import CycleArchive
from aimesh.cli import _worker_command, with_embedded_fix_model
from aimesh.embedded.processes import free_port, wait_until
from testbed.mesh import worker_env
from tests.conftest import processes_with


def up_env(tmp_path: Path, llm_host: str, web_port: int) -> dict[str, str]:
    env = worker_env(tmp_path, "", llm_host, web_port)
    for name in ("AIMESH_BROKER_URL", "AIMESH_MAX_TASKS"):
        env.pop(name)
    env["AIMESH_TASK_INTERVAL"] = "0.1"
    return env


def task_file(path: Path, markers: list[str]) -> Path:
    lines = [
        {"id": f"t{i}", "title": f"{m} add", "function_name": "add",
         "tests": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]}
        for i, m in enumerate(markers)
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_up_runs_n_cycles_on_an_embedded_broker_and_exits_0(tmp_path, scripted_llm):
    tasks = task_file(tmp_path / "tasks.jsonl", ["[pass]", "[fix]", "[fail]"])
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "aimesh", "up", "--max-cycles", "3", "--tasks", str(tasks),
         "--web-port", str(port)],
        env=up_env(tmp_path, scripted_llm.host, port), cwd=tmp_path, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker: embedded Tansu at kafka://127.0.0.1:" in result.stdout
    assert "cycles finished 3/3" in result.stdout
    cycles = CycleArchive(tmp_path / "tables").cycles.read()
    outcomes = dict(zip(cycles["cycle_id"].str.split(":").str[-1], cycles["outcome"], strict=True))
    assert outcomes == {"t0": "passed", "t1": "passed", "t2": "gave_up"}
    assert _closed(port), "the worker's web server is gone"


def test_up_invents_tasks_whose_tests_its_own_solution_passes(tmp_path, scripted_llm):
    """No task file: the Producer invents tasks. The scripted model's task has four tests, one
    expecting a wrong value; its own solution fails that one, so it is dropped before the task is
    sent, and the cycles pass instead of spending their fixes on a test no code can pass."""
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "aimesh", "up", "--max-cycles", "2", "--web-port", str(port)],
        env=up_env(tmp_path, scripted_llm.host, port), cwd=tmp_path, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    archive = CycleArchive(tmp_path / "tables")
    assert archive.cycles.read()["outcome"].tolist() == ["passed", "passed"]
    asked = archive.attempts.read()["task"].tolist()
    assert all("assert add(1, 2) == 3" in task and "add(2, 2) == 5" not in task for task in asked)


def most_open_at_once(cycles: list[tuple[float, float]]) -> int:
    """The largest number of cycles open at one instant, each open from start to finish."""
    edges = sorted([(start, 1) for start, _ in cycles] + [(end, -1) for _, end in cycles])
    open_now = most = 0
    for _, change in edges:
        open_now += change
        most = max(most, open_now)
    return most


def test_the_producer_keeps_at_most_max_in_flight_cycles_open(tmp_path, scripted_llm):
    """Six tasks queued 0.1 s apart, each needing a fix round trip of seconds: without the window
    all six would be open together; with AIMESH_MAX_IN_FLIGHT=2 no more than two ever are."""
    tasks = task_file(tmp_path / "tasks.jsonl", ["[fix]"] * 5 + ["[pass]"])
    port = free_port()
    env = up_env(tmp_path, scripted_llm.host, port)
    env["AIMESH_MAX_IN_FLIGHT"] = "2"
    result = subprocess.run(
        [sys.executable, "-m", "aimesh", "up", "--max-cycles", "6", "--tasks", str(tasks),
         "--web-port", str(port)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    cycles = CycleArchive(tmp_path / "tables").cycles.read()
    assert len(cycles) == 6 and set(cycles["outcome"]) == {"passed"}
    starts, ends = cycles["started_at"].astype(float), cycles["finished_at"].astype(float)
    spans = list(zip(starts, ends, strict=True))
    assert all(end > start for start, end in spans)
    assert most_open_at_once(spans) == 2, spans


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_everything_it_started(tmp_path, scripted_llm, stop_signal):
    port = free_port()
    env = up_env(tmp_path, scripted_llm.host, port)
    env["AIMESH_MAX_TASKS"] = "0"
    process = subprocess.Popen(
        [sys.executable, "-m", "aimesh", "up"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/status", 90)
        home = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True)
        assert home.status_code == 200 and "<title>AI-Mesh" in home.text, home.text[:200]
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "OK"}
        summary = httpx.get(f"http://127.0.0.1:{port}/api/summary").json()
        assert summary["cycles_finished"] == 0 and summary["pass_rate_first_try"] is None
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, output
    broker = output.split("embedded Tansu at kafka://")[1].split()[0]
    broker_port = broker.rsplit(":", 1)[1]
    assert _closed(port) and _closed(int(broker_port)), output
    assert not processes_with(f"AIMESH_DATA_DIR={env['AIMESH_DATA_DIR']}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_for(url: str, timeout: float) -> None:
    assert wait_until(lambda: _answers(url), timeout, every=0.3), f"{url}: no answer in {timeout} s"


def _closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_busy_web_port_is_a_clear_error_before_anything_starts(tmp_path, scripted_llm):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "aimesh", "up", "--web-port", str(port)],
            env=up_env(tmp_path, scripted_llm.host, port), cwd=tmp_path, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is in use" in result.stderr and "--web-port" in result.stderr
    assert "broker:" not in result.stdout


def test_an_unknown_or_missing_chat_model_is_refused_before_anything_starts(tmp_path):
    """With no Ollama answering, the embedded server's model is checked first (exit 2)."""
    env = up_env(tmp_path, "http://127.0.0.1:9", free_port())  # nothing answers there
    env["AIMESH_CHAT_MODEL"] = "llama9:1t"
    result = subprocess.run(
        [sys.executable, "-m", "aimesh", "up"], env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "AIMESH_CHAT_MODEL: unknown model 'llama9:1t'" in result.stderr
    assert "broker:" not in result.stdout


def test_on_the_embedded_server_fixes_go_to_the_larger_model_unless_told_otherwise():
    assert with_embedded_fix_model({})["AIMESH_FIX_MODEL"] == "qwen2.5-coder:1.5b"
    chosen = {"AIMESH_FIX_MODEL": ""}  # empty: the chat model fixes its own code
    assert with_embedded_fix_model(chosen)["AIMESH_FIX_MODEL"] == ""
    other_chat = {"AIMESH_CHAT_MODEL": "smollm2:135m"}
    assert "AIMESH_FIX_MODEL" not in with_embedded_fix_model(other_chat)


def test_the_worker_runs_on_uvloop_unless_a_loop_is_named(monkeypatch):
    for name in ("FAUST_LOOP", "F_LOOP"):
        monkeypatch.delenv(name, raising=False)
    assert _worker_command()[3:5] == ["-L", "uvloop"]
    monkeypatch.setenv("F_LOOP", "aio")
    assert _worker_command()[3:5] == ["-L", "aio"]
