"""The layers of `aimesh/` hold because a test reads every import, not because a docstring asks.

- The cycle (`cycle/`) and the engines (`llm/`, `memory/`, `sandbox/`, `archive/`) import
  neither Faust (nor `mode` or `aiokafka`) nor the app, the agents, the stream plumbing, the web
  layer or the composition modules. The one exception is named: `cycle/records.py` builds the
  topics' records on `faust.Record`, a decision the project took.
- Agents are imported only by the app's autodiscovery: nothing but their own unit tests imports
  an agent module (the private helpers beside them, `agents/_*.py`, may be imported).
- Nothing outside `tests/` imports `tests/`, and the product imports neither `tests/` nor
  `testbed/` (where the scripted LLM lives).

Each rule is checked on the repository, and on a small tree that breaks it, so the checker is
seen to catch what it claims to.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOWER = ("cycle", "llm", "memory", "sandbox", "archive")
FRAMEWORKS = ("faust", "mode", "aiokafka")
UPPER = (
    "aimesh.app",
    "aimesh.agents",
    "aimesh.stream",
    "aimesh.web",
    "aimesh.services",
    "aimesh.topics",
    "aimesh.cli",
    "aimesh.settings",
)
MAY_USE_FAUST = {"aimesh/cycle/records.py"}


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path) -> list[str]:
    """Every module `path` imports, absolute, including `from pkg import module` as pkg.module."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(root, path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_agent(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 3 and parts[:2] == ["aimesh", "agents"] and not parts[2].startswith("_")


def violations(root: Path) -> list[str]:
    """Each broken rule under `root`, as "file: what it imports (why not)"."""
    found: dict[tuple[str, str], str] = {}  # (file, rule) -> the first import that broke it
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith((".venv/", "build/")):
            continue
        top = relative.split("/")[0]
        for name in imports(root, path):
            if top == "aimesh" and relative.split("/")[1] in LOWER:
                if _within(name, FRAMEWORKS) and relative not in MAY_USE_FAUST:
                    found.setdefault((relative, "the cycle and engines know no Faust"), name)
                if _within(name, UPPER):
                    found.setdefault((relative, "the cycle and engines sit below it"), name)
            if _is_agent(name) and top != "tests" and not relative.startswith("aimesh/agents/"):
                found.setdefault((relative, "agents come only from autodiscovery"), name)
            if _within(name, ("tests",)) and top != "tests":
                found.setdefault((relative, "nothing imports tests/"), name)
            if _within(name, ("testbed",)) and top == "aimesh":
                found.setdefault((relative, "the product does not use the test bed"), name)
    return [f"{file}: {name} ({rule})" for (file, rule), name in found.items()]


def test_the_repository_keeps_its_layers() -> None:
    assert violations(ROOT) == []


BREAKS = {
    "aimesh/cycle/steps.py": ("from faust import Record\n", ": faust ("),
    "aimesh/sandbox/pool.py": ("from aimesh.app import app\n", "aimesh.app"),
    "aimesh/memory/skill.py": ("import aimesh.stream.telemetry\n", "aimesh.stream.telemetry"),
    "aimesh/web/views.py": ("from aimesh.agents import producer\n", "aimesh.agents.producer"),
    "bench/mesh_throughput.py": ("from tests.conftest import Worker\n", "tests.conftest"),
    "aimesh/llm/client.py": ("from testbed.scripted_llm import embed\n", "testbed.scripted_llm"),
    "aimesh/archive/join.py": ("from ..stream import deadletter\n", ": aimesh.stream ("),
}


@pytest.mark.parametrize("file", sorted(BREAKS))
def test_a_broken_rule_is_caught(tmp_path: Path, file: str) -> None:
    source, named = BREAKS[file]
    path = tmp_path / file
    path.parent.mkdir(parents=True)
    for parent in path.relative_to(tmp_path).parents:
        (tmp_path / parent / "__init__.py").touch()
    path.write_text(source)
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(f"{file}: ") and named in found[0], found


def test_what_the_rules_allow_is_not_flagged(tmp_path: Path) -> None:
    allowed = {
        "aimesh/cycle/records.py": "import faust\n",
        "aimesh/agents/consumer.py": "from aimesh.agents._guard import handle\n",
        "tests/test_guard.py": "from aimesh.agents import _guard\nfrom tests.conftest import x\n",
        "bench/mesh_throughput.py": "from testbed.mesh import Worker\n",
        "aimesh/web/views.py": "from aimesh.cycle.records import Task\n",
    }
    for file, source in allowed.items():
        path = tmp_path / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    assert violations(tmp_path) == []


def _loaded_after_importing(packages: tuple[str, ...]) -> list[str]:
    """In a fresh interpreter, import every module of `packages`; return which modules of Faust,
    mode, aiokafka, the app, the agents and the stream plumbing that loaded."""
    names = sorted(
        _module_name(ROOT, path)
        for package in packages
        for path in (ROOT / "aimesh" / package).rglob("*.py")
        if "__pycache__" not in path.parts and path.name != "start.py"  # the jail's entry point
    )
    probe = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('faust', 'mode', 'aiokafka') or m.startswith(('aimesh.app', 'aimesh.agents',"
        " 'aimesh.stream', 'aimesh.services', 'aimesh.topics')))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert len(names) > 5, names
    return list(json.loads(done.stdout))


def test_the_engines_load_neither_faust_nor_the_app() -> None:
    """The static rule, seen at run time: every module of the engines imported, nothing of Faust
    or of the layers above is loaded."""
    assert _loaded_after_importing(("llm", "memory", "sandbox", "archive")) == []


def test_the_cycle_loads_faust_only_for_its_records() -> None:
    loaded = _loaded_after_importing(("cycle",))
    assert [m for m in loaded if m.startswith("aimesh.")] == []
    assert "faust" in loaded  # through records, the named exception (else drop the exception)
