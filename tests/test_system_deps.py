"""scripts/system-deps.sh: what `make run` and `make test` install, and what a user without root
is told. Run with a PATH of stand-ins (`id`, `apt-get`, the tools it looks for), so each case is
the machine it describes and nothing is installed here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "system-deps.sh"
EVERYTHING = "bubblewrap chromium chromium-driver default-jre-headless maven"


def _stand_in(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def machine(tmp_path: Path, uid: int, has: dict[str, str], apt_fails_first: bool = False) -> Path:
    """A bin dir with the shell tools the script uses, `id -u` answering `uid`, an `apt-get` that
    logs its arguments (and fails its first install when asked), and the commands in `has`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sed", "head", "grep"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    _stand_in(bin_dir, "id", f"echo {uid}")
    log = tmp_path / "apt.log"
    fail = f'[ "$1" = install ] && [ ! -e {tmp_path}/failed ] && : > {tmp_path}/failed && exit 100'
    _stand_in(bin_dir, "apt-get", f'echo "$@" >> {log}\n{fail if apt_fails_first else ""}\ntrue')
    for name, body in has.items():
        _stand_in(bin_dir, name, body)
    return bin_dir


def run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT), *args], env={"PATH": str(bin_dir)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_without_root_it_prints_the_exact_command_and_stops(tmp_path):
    done = run(machine(tmp_path, 1000, {}), "test")
    assert done.returncode == 1
    command = f"sudo apt-get install -y --no-install-recommends {EVERYTHING}"
    assert f"sudo apt-get update && {command}" in done.stderr, done.stderr
    assert "make test" in done.stderr
    assert apt_calls(tmp_path) == []


def test_as_root_it_installs_what_is_missing_refreshing_apt_when_an_install_fails(tmp_path):
    done = run(machine(tmp_path, 0, {}, apt_fails_first=True), "test")
    assert done.returncode == 0, done.stderr
    install = f"install -y --no-install-recommends {EVERYTHING}"
    assert apt_calls(tmp_path) == [install, "update -q", install]


def test_make_run_needs_only_bubblewrap(tmp_path):
    done = run(machine(tmp_path, 0, {}), "run")
    assert done.returncode == 0, done.stderr
    assert apt_calls(tmp_path) == ["install -y --no-install-recommends bubblewrap"]


def test_nothing_is_installed_when_everything_is_there_and_an_old_java_counts_as_missing(
    tmp_path,
):
    java = {"java": "echo 'openjdk version \"11.0.2\" 2019-01-15' >&2"}
    has = {name: "true" for name in ("bwrap", "chromium", "chromedriver", "mvn")}
    done = run(machine(tmp_path, 0, has | java), "test")
    assert done.returncode == 0, done.stderr
    assert apt_calls(tmp_path) == ["install -y --no-install-recommends default-jre-headless"]
    (tmp_path / "apt.log").unlink()
    shutil.rmtree(tmp_path / "bin")
    java = {"java": "echo 'openjdk version \"17.0.15\" 2025-04-15' >&2"}
    done = run(machine(tmp_path, 0, has | java), "test")
    assert (done.returncode, done.stdout, done.stderr, apt_calls(tmp_path)) == (0, "", "", [])


@pytest.mark.parametrize("args", [[], ["install"], ["run", "test"]])
def test_a_bad_argument_is_named_and_exits_2(tmp_path, args):
    done = run(machine(tmp_path, 0, {}), *args)
    assert done.returncode == 2 and "usage: system-deps.sh run|test" in done.stderr
    if args == ["install"]:
        assert "unknown argument 'install'" in done.stderr
