"""`aimesh sandbox CODE_FILE [--test FILE] [--preamble FILE] [--entry-point NAME] [--timeout S]
[--same-process]`: a verdict as JSON, with the mode that judged it; exit 0 on pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KEYS = {"status", "passed", "exit_code", "error_type", "error", "stdout", "stderr", "duration_ms",
        "layers", "mode"}  # fmt: skip


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
    assert "rlimits" in verdict["layers"] and verdict["mode"] == "split"


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


def test_split_refuses_a_forgery_and_the_same_process_mode_says_it_is_unsafe(tmp_path):
    """The frame-walking forgery of the forging suite; the same-process mode, kept for
    whole-program runs, can be fooled by it, and each of its verdicts says so."""
    forged = (
        "import json, os, sys\n\n"
        "def add(a, b):\n"
        "    frame = sys._getframe()\n"
        "    while frame is not None:\n"
        "        seen = frame.f_locals\n"
        "        if 'report_fd' in seen and 'nonce' in seen:\n"
        "            done = {'phase': 'done', 'type': '', 'nonce': seen['nonce']}\n"
        "            os.write(seen['report_fd'], json.dumps(done).encode())\n"
        "            os._exit(0)\n"
        "        frame = frame.f_back\n"
        "    return a - b\n"
    )
    code, verdict = sandbox(tmp_path, forged, "assert add(1, 2) == 3")
    assert (code, verdict["status"], verdict["mode"]) == (1, "failed", "split")
    code, verdict = sandbox(tmp_path, forged, "assert add(1, 2) == 3", "--same-process")
    assert verdict["mode"] == "same-process (unsafe for verdicts)"


def test_a_humaneval_problem_with_its_prompt_as_preamble(tmp_path):
    import gzip

    from aimesh.cycle.tasksource import humaneval_path

    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as lines:
        problem = json.loads(next(lines))
    (tmp_path / "prompt.py").write_text(problem["prompt"])
    flags = ("--preamble", str(tmp_path / "prompt.py"), "--entry-point", problem["entry_point"])
    body = problem["canonical_solution"]
    code, verdict = sandbox(tmp_path, problem["prompt"] + body, problem["test"], *flags)
    assert (code, verdict["status"]) == (0, "passed")
    wrong = problem["prompt"] + "    return False\n"
    code, verdict = sandbox(tmp_path, wrong, problem["test"], *flags)
    assert (code, verdict["status"]) == (1, "failed"), verdict


def test_a_bad_entry_point_names_itself_and_exits_2(tmp_path):
    (tmp_path / "p.py").write_text("x = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "aimesh", "sandbox", str(tmp_path / "p.py"), "--entry-point", "a b"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "--entry-point" in result.stderr
