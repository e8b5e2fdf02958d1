"""`aimesh sandbox CODE_FILE [--test FILE] [--timeout S]`: a verdict as JSON, exit 0 on pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KEYS = {"status", "passed", "exit_code", "error_type", "error", "stdout", "stderr", "duration_ms",
        "layers"}  # fmt: skip


def sandbox(tmp_path: Path, code: str, test: str | None = None, *flags: str) -> tuple[int, dict]:
    program = tmp_path / "program.py"
    program.write_text(code)
    command = [sys.executable, "-m", "aimesh", "sandbox", str(program), *flags]
    if test is not None:
        (tmp_path / "test.py").write_text(test)
        command += ["--test", str(tmp_path / "test.py")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout)


def test_a_passing_program_prints_its_verdict_and_exits_0(tmp_path):
    code, verdict = sandbox(tmp_path, "def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3")
    assert code == 0 and KEYS <= set(verdict)
    assert verdict["status"] == "passed" and verdict["passed"] is True
    assert "rlimits" in verdict["layers"]


def test_a_failing_test_and_a_timeout_exit_1(tmp_path):
    code, verdict = sandbox(tmp_path, "def add(a, b):\n    return a - b\n", "assert add(1, 2) == 3")
    assert (code, verdict["status"], verdict["error_type"]) == (1, "failed", "AssertionError")
    assert "assert add(1, 2) == 3" in verdict["error"]
    code, verdict = sandbox(tmp_path, "while True:\n    pass\n", None, "--timeout", "0.5")
    assert (code, verdict["status"]) == (1, "timeout")


def test_a_refused_call_is_forbidden_and_named(tmp_path):
    code, verdict = sandbox(tmp_path, "import socket\nsocket.create_connection(('1.1.1.1', 53))")
    assert (code, verdict["status"]) == (1, "forbidden")
    assert "socket(AF_INET, SOCK_STREAM)" in verdict["error"]
    assert {"landlock-fs", "seccomp", "no-capabilities"} <= set(verdict["layers"])
