"""Task files: the project's own JSONL format and HumanEval's, and clear errors for bad lines."""

import json
from pathlib import Path

import pytest

from aimesh.cycle.tasksource import TaskSourceError, read_jsonl


def write(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_own_format_with_list_of_tests(tmp_path):
    path = write(
        tmp_path / "t.jsonl",
        {"title": "Add", "function_name": "add", "tests": ["assert add(1, 2) == 3", "assert 1"]},
        "",
        {"id": "x", "title": "Neg", "tests": "assert neg(1) == -1"},
    )
    first, second = read_jsonl(path)
    assert (first.id, first.tests) == ("t-1", "assert add(1, 2) == 3\nassert 1")
    assert (second.id, second.function_name) == ("x", "")


def test_humaneval_format_is_accepted_as_is(tmp_path):
    line = {
        "task_id": "HumanEval/0",
        "prompt": 'def f(x):\n    """Double."""\n',
        "canonical_solution": "    return 2 * x\n",
        "test": "def check(candidate):\n    assert candidate(2) == 4\n",
        "entry_point": "f",
    }
    (spec,) = read_jsonl(write(tmp_path / "he.jsonl", line))
    assert spec.id == "HumanEval/0" and spec.entry_point == "f"
    assert spec.description.startswith("def f(x)") and "check(candidate)" in spec.tests


def test_bad_lines_name_file_and_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", {"title": "ok", "tests": ["assert 1"]}, "{oops", [1, 2])
    with pytest.raises(TaskSourceError, match=r"bad.jsonl:2"):
        list(read_jsonl(path))
    errors: list[str] = []
    specs = list(read_jsonl(path, on_error=lambda e: errors.append(str(e))))
    assert len(specs) == 1
    assert [e.split(": ", 1)[0][-11:] for e in errors] == ["bad.jsonl:2", "bad.jsonl:3"]


def test_missing_fields_and_bad_names_are_refused(tmp_path):
    path = write(
        tmp_path / "m.jsonl",
        {"title": "x"},
        {"title": "y", "tests": "assert 1", "function_name": "class"},
    )
    errors: list[str] = []
    assert list(read_jsonl(path, on_error=lambda e: errors.append(str(e)))) == []
    assert "missing tests" in errors[0] and "not a Python identifier" in errors[1]


def test_an_invented_task_keeps_only_asserts_that_call_its_function():
    from aimesh.cycle.tasksource import invented_task

    data = {
        "title": "Square", "description": "n squared", "function_name": "square",
        "signature": "def square(n):",
        "tests": ["assert square(2) == 4", "square(3) == 9", "assert name(input) == expected",
                  "def square(n):", "assert square(4) == 16"],
    }  # fmt: skip
    spec = invented_task(data, "t-1")
    assert spec.tests.splitlines() == [
        "assert square(2) == 4", "assert square(3) == 9", "assert square(4) == 16"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="2 usable tests calling square"):
        invented_task({**data, "tests": data["tests"][:3]}, "t-2")
    with pytest.raises(ValueError, match="not a Python identifier"):
        invented_task({**data, "function_name": "large-name"}, "t-3")


@pytest.mark.parametrize(
    ("signature", "kept"),
    [
        ("def max_number(numbers): return max(numbers)", "def max_number(numbers):"),
        (
            "def f(xs: list[int], k: int = 2) -> int:\n    return xs[k]",
            "def f(xs: list[int], k: int = 2) -> int:",
        ),
        ("def square(n):", "def square(n):"),
        ("square(n)", "square(n)"),  # not a def: kept as written
    ],
)
def test_an_invented_signature_keeps_only_its_header(signature, kept):
    """A small model sometimes writes the body into the signature: the prompt would show the
    answer."""
    from aimesh.cycle.tasksource import invented_task

    data = {"title": "T", "description": "d", "function_name": "f", "signature": signature,
            "tests": ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]}  # fmt: skip
    assert invented_task(data, "t-1").signature == kept


def test_a_task_may_set_its_own_sandbox_limits(tmp_path):
    path = write(
        tmp_path / "l.jsonl",
        {"title": "slow", "tests": "assert 1", "limits": {"timeout_s": 30, "memory_mb": 1024}},
        {"title": "greedy", "tests": "assert 1", "limits": {"memory_mb": 10**9}},
        {"title": "odd", "tests": "assert 1", "limits": {"gpus": 1}},
    )
    errors: list[str] = []
    (spec,) = read_jsonl(path, on_error=lambda e: errors.append(str(e)))
    assert spec.limits == {"timeout_s": 30, "memory_mb": 1024}
    assert "ceiling" in errors[0] and "unknown sandbox limit(s) gpus" in errors[1]


def test_own_format_may_carry_a_preamble_shown_in_the_prompt(tmp_path):
    from aimesh.cycle.prompts import first_prompt

    line = {
        "title": "Scale",
        "function_name": "scale",
        "preamble": "FACTOR = 3\n",
        "tests": ["assert scale(2) == 6"],
    }
    (spec,) = read_jsonl(write(tmp_path / "own.jsonl", line))
    assert spec.preamble == "FACTOR = 3\n" and not spec.tests_hidden
    prompt = first_prompt(spec)
    assert "```python\nFACTOR = 3\n```" in prompt and "assert scale(2) == 6" in prompt
    with pytest.raises(TaskSourceError, match="preamble must be a string"):
        list(read_jsonl(write(tmp_path / "bad.jsonl", {**line, "preamble": ["x"]})))
