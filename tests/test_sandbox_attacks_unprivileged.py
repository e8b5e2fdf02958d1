"""The attack suite again, with the sandbox (engine, fork servers, runs) as an unprivileged user.

Root and an ordinary user take different paths: root's capabilities must be dropped, and an
ordinary user's own files are writable by it; the layers must hold either way. The targets are
made reachable for that user (its own secret file, its own process, a writable dir), so only
the sandbox stands in the way. Needs root to switch users, and a Python >= 3.11 that the user
can run (a venv under /root is out of its reach; the system's interpreter usually is not).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimesh.sandbox import RunResult
from tests.test_sandbox_attacks import (
    ATTACKS,
    HEALTH_PROGRAM,
    REPO_ROOT,
    Attack,
    Host,
    attack_problems,
    describe,
    health_problems,
)

USER = 65534  # nobody
HELPER = Path(__file__).with_name("sandbox_as_user.py")
CANDIDATES = (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3")


def _usable_python() -> str | None:
    """An interpreter USER can run, new enough for the engine."""
    for python in dict.fromkeys(c for c in CANDIDATES if c and os.path.exists(c)):
        probe = [python, "-c", "import sys; assert sys.version_info >= (3, 11)"]
        try:
            ok = subprocess.run(probe, user=USER, capture_output=True, timeout=30).returncode == 0
        except OSError:
            continue
        if ok:
            return python
    return None


class UserSandbox:
    """The helper process, running as USER, that runs each attack through its own pool."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, str(HELPER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            user=USER,
            group=USER,
            extra_groups=[],
            env={"PYTHONPATH": str(REPO_ROOT)},
            cwd="/",
        )

    def run(self, program: str, attack: Attack, mode: str) -> tuple[RunResult, RunResult]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        limits = dataclasses.asdict(attack.limits)
        request = {"program": program, "health": HEALTH_PROGRAM, "limits": limits, "mode": mode}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the unprivileged helper exited ({self.proc.wait()})")
        answer = json.loads(line)
        return _result(answer["result"]), _result(answer["health"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _result(data: dict) -> RunResult:
    data["layers"] = tuple(data["layers"])
    return RunResult(**data)


@pytest.fixture(scope="module")
def user_sandbox() -> Iterator[UserSandbox]:
    if os.geteuid() != 0:
        pytest.skip(f"already unprivileged: the whole attack suite ran as uid {os.geteuid()}")
    python = _usable_python()
    if python is None:
        pytest.skip(f"no Python >= 3.11 that uid {USER} can run (tried {', '.join(CANDIDATES)})")
    sandbox = UserSandbox(python)
    yield sandbox
    sandbox.close()


@pytest.fixture
def user_host() -> Iterator[Host]:
    place = Path(tempfile.mkdtemp(prefix="aimesh-attack-"))
    place.chmod(0o777)  # the user could write here, were it not for the sandbox
    host = Host(place, uid=USER)
    yield host
    host.close()
    shutil.rmtree(place, ignore_errors=True)


@pytest.mark.parametrize("mode", ["split", "same-process"])
@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_attack_is_contained_as_an_unprivileged_user(
    attack: Attack, user_host: Host, user_sandbox: UserSandbox, mode: str
) -> None:
    result, health = user_sandbox.run(user_host.render(attack.program), attack, mode)
    problems = attack_problems(attack, user_host, result, mode) + health_problems(health)
    if "no-capabilities" not in result.layers or "seccomp" not in result.layers:
        problems.append(f"ran without its layers: {result.layers}")
    assert not problems, "\n".join(problems) + "\n" + describe(result)
