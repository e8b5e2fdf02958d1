"""`aimesh export`: an archive with passing, failing, fixed and duplicated cycles, written through
the archive's own join as the Persistence agent writes it, then exported through the real command
and checked record by record, format by format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.json as pa_json
import pytest

from aimesh.archive import CycleArchive, new_state
from aimesh.archive.dataset import DATASETS, PROVENANCE, SCHEMA, code_hash, normalized
from aimesh.cycle.prompts import CODER_SYSTEM

ROOT = Path(__file__).resolve().parents[1]
GOOD = "def add(a, b):\n    return a + b\n"
GOOD_AGAIN = "def add(a, b):  # the sum\n\n    return a+b\n"  # GOOD, but for comments and spaces
GOOD_OTHER = "def add(a, b):\n    return sum((a, b))\n"
BAD = "def add(a, b):\n    return a - b\n"
FORGEABLE = "def add(a, b):\n    return b + a\n"
WORSE = "def add(a, b):\n    return a * b\n"
ERROR = "AssertionError: add(1, 2) returned -1, expected 3 at tests.py line 1"


def _cycle(
    archive: CycleArchive,
    cycle_id: str,
    attempts: list[tuple[str, str]],  # (code, status) per attempt
    *,
    source: str = "llm",
    mode: str = "split",
    score: float | None = 0.9,
    model: str = "coder-a",
    at: float = 1_000.0,
    finished: bool = True,
) -> None:
    """One cycle's parts, in the order the agents send them, through the archive's join."""
    state = new_state()
    for number, (code, status) in enumerate(attempts, start=1):
        last = number == len(attempts)
        passed = status == "passed"
        outcome = ("passed" if passed else "gave_up") if last and finished else ""
        prompt = (
            f"Task: add two numbers ({cycle_id})" if number == 1 else f"FIX THIS CODE: {number}"
        )
        parts: list[tuple[str, dict[str, Any]]] = [
            ("task", {"cycle_id": cycle_id, "attempt": number, "title": f"add {cycle_id}",
                      "prompt": prompt, "description": "", "source": source,
                      "created_at": at}),
            ("solution", {"cycle_id": cycle_id, "attempt": number, "code": code, "model": model,
                          "memories": []}),
            ("verdict", {"cycle_id": cycle_id, "attempt": number, "status": status,
                         "passed": passed, "error_type": "" if passed else "AssertionError",
                         "error": "" if passed else ERROR, "mode": mode, "outcome": outcome,
                         "created_at": at + number}),
            ("review", {"cycle_id": cycle_id, "attempt": number, "score": score,
                        "critique": "ok", "valid": True, "created_at": at + number}),
        ]  # fmt: skip
        for part, data in parts:
            state = archive.add(state, part, data).state


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    folder = tmp_path / "tables"
    archive = CycleArchive(folder)
    _cycle(archive, "first-try", [(GOOD, "passed")], at=1_000)
    _cycle(archive, "fixed", [(BAD, "failed"), (GOOD_OTHER, "passed")], model="coder-b", at=2_000)
    _cycle(archive, "duplicate", [(GOOD_AGAIN, "passed")], at=3_000)
    _cycle(archive, "gave-up", [(BAD, "failed"), (WORSE, "failed")], at=4_000)
    _cycle(archive, "forgeable", [(FORGEABLE, "passed")], mode="same-process", at=5_000)
    _cycle(archive, "benchmark", [(GOOD_OTHER + "\n", "passed")], source="humaneval", at=6_000)
    _cycle(archive, "running", [(BAD, "failed")], finished=False, at=7_000)
    _cycle(
        archive,
        "two-fixes",
        [(WORSE, "failed"), ("", "error"), (GOOD + "# done\n", "passed")],
        score=0.4,
        at=8_000,
    )  # fmt: skip
    return folder


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aimesh", "export", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_comments_and_spacing_do_not_make_code_new() -> None:
    assert code_hash(GOOD) == code_hash(GOOD_AGAIN) == code_hash(GOOD + "# done\n")
    assert code_hash(GOOD) != code_hash(GOOD_OTHER)
    assert code_hash("def f():\n    return 1\n") != code_hash("def f():\n    return '1'\n")
    assert normalized("x = (1,\n     2)") == normalized("x = (1, 2)")
    assert normalized("if x:\n    y\nz") != normalized("if x:\n    y\n    z")  # blocks count
    assert normalized("def broken(:") == "def broken(:"  # untokenizable: its words


def test_the_default_export_is_sft_of_trusted_unique_solutions(tables: Path, tmp_path: Path):
    out = tmp_path / "out"
    done = export("--tables", str(tables), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "sft.jsonl"]
    records = _lines(out / "sft.jsonl")
    assert [r["cycle_id"] for r in records] == ["first-try", "fixed"]  # oldest first
    first, fixed = records
    assert first["messages"] == [
        {"role": "system", "content": CODER_SYSTEM},
        {"role": "user", "content": "Task: add two numbers (first-try)"},
        {"role": "assistant", "content": f"```python\n{GOOD.rstrip()}\n```"},
    ]
    assert {k: v for k, v in first.items() if k != "messages"} == {
        "cycle_id": "first-try", "attempt": 1, "title": "add first-try", "model": "coder-a",
        "verdict_mode": "split", "status": "passed", "review_score": 0.9, "source": "llm",
        "benchmark": False, "finished_at": 1_001.0, "code_sha256": code_hash(GOOD),
    }  # fmt: skip
    assert fixed["attempt"] == 2 and fixed["model"] == "coder-b"
    assert fixed["messages"][1]["content"] == "Task: add two numbers (fixed)"  # the first ask
    assert fixed["messages"][2]["content"].count("sum((a, b))") == 1
    # 'duplicate' and 'two-fixes' pass with GOOD's code, comments and spaces aside
    assert "sft: 2 records, 2 duplicates dropped" in done.stdout
    assert "left out by benchmark: 1" in done.stdout
    assert "left out by not judged in the split mode: 1" in done.stdout


def test_every_format_field_by_field(tables: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = export("--tables", str(tables), "--out", str(out), "--format", "all")
    assert done.returncode == 0, done.stderr
    flat = _lines(out / "sft_flat.jsonl")
    assert [(r["prompt"], r["completion"]) for r in flat] == [
        ("Task: add two numbers (first-try)", GOOD),
        ("Task: add two numbers (fixed)", GOOD_OTHER),
    ]
    repair = _lines(out / "repair.jsonl")
    assert len(repair) == 1  # 'two-fixes' passed after an attempt with no code: no repair pair
    pair = repair[0]
    assert (pair["cycle_id"], pair["attempt"], pair["failing_attempt"]) == ("fixed", 2, 1)
    assert (pair["failing_code"], pair["completion"]) == (BAD, GOOD_OTHER)
    assert (pair["error_type"], pair["error"]) == ("AssertionError", ERROR)
    assert pair["prompt"] == "FIX THIS CODE: 2" and pair["task"] == "Task: add two numbers (fixed)"
    assert pair["failing_sha256"] == code_hash(BAD)
    preference = _lines(out / "preference.jsonl")
    pairs = [(p["cycle_id"], p["rejected_attempt"], p["rejected"], p["chosen"]) for p in preference]
    assert pairs == [("fixed", 1, BAD, GOOD_OTHER), ("two-fixes", 1, WORSE, GOOD + "# done\n")]
    assert preference[0]["prompt"] == "Task: add two numbers (fixed)"
    assert preference[1]["rejected_status"] == "failed" and preference[1]["review_score"] == 0.4
    for name in DATASETS:
        records = _lines(out / f"{name}.jsonl")
        fields = [f for f, _, _ in SCHEMA[name]] + [f for f, _, _ in PROVENANCE]
        assert all(list(r) == fields for r in records), name  # the schema the card documents
        parquet = pd.read_parquet(out / f"{name}.parquet")
        assert list(parquet.columns) == fields
        assert parquet["cycle_id"].tolist() == [r["cycle_id"] for r in records]
        assert parquet["code_sha256"].tolist() == [r["code_sha256"] for r in records]


def test_the_files_load_as_json_datasets_read_them(tables: Path, tmp_path: Path) -> None:
    """`datasets.load_dataset("json", ...)` reads JSONL with pyarrow's JSON reader: every file
    must parse there into one table with one type per column (and with datasets, if present)."""
    out = tmp_path / "out"
    assert export("--tables", str(tables), "--out", str(out), "--format", "all").returncode == 0
    for name in DATASETS:
        table = pa_json.read_json(out / f"{name}.jsonl")
        assert table.num_rows == len(_lines(out / f"{name}.jsonl"))
        assert str(table.schema.field("attempt").type) == "int64"
        assert str(table.schema.field("benchmark").type) == "bool"
        assert str(table.schema.field("review_score").type) == "double"
    messages = pa_json.read_json(out / "sft.jsonl").schema.field("messages").type
    assert str(messages) == "list<item: struct<role: string, content: string>>"
    try:
        import datasets
    except ImportError:
        return
    loaded = datasets.load_dataset("json", data_files=str(out / "sft.jsonl"), split="train")
    assert loaded.num_rows == 2


def test_the_card_says_what_is_in_the_folder(tables: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("--tables", str(tables), "--out", str(out), "--format", "repair", "--min-score", "0.5")
    assert export(*args).returncode == 0
    card = (out / "README.md").read_text()
    front = card.split("---")[1]
    assert "- config_name: repair\n  data_files: repair.jsonl" in front
    assert "config_name: sft" not in front  # only what was written
    assert "| repair | 1 | 0 | yes |" in card
    assert "| sft | 2 | 1 | no |" in card  # two-fixes (score 0.4) is left out by the filter
    assert "- review score >= 0.5" in card and "- benchmarks: left out" in card
    assert "- left out by review score: 1 passing cycle(s)" in card
    assert "7 finished cycles, 11 attempts; 1 cycle(s) still running were not read." in card
    assert "| llm | 1 | 4 | 5 | 10 |" in card  # source: error, failed, passed, all
    assert "| coder-b | 2 | 1 | 50.0% |" in card
    assert "| failing_code | string |" in card and "| code_sha256 | string |" in card


def test_filters_and_asking_for_benchmarks(tables: Path, tmp_path: Path) -> None:
    def cycles(*args: str) -> list[str]:
        out = tmp_path / "out"
        done = export("--tables", str(tables), "--out", str(out), "--format", "flat", *args)
        assert done.returncode == 0, done.stderr
        return [r["cycle_id"] for r in _lines(out / "sft_flat.jsonl")]

    assert cycles("--model", "coder-b") == ["fixed"]
    window = ("--since", "1970-01-01T00:30:00", "--until", "1970-01-01T01:00:00")
    assert cycles(*window) == ["fixed", "duplicate"]  # first-try is out, so no longer its twin
    assert cycles("--include-benchmarks") == ["first-try", "fixed"]  # its code is fixed's
    late = ("--include-benchmarks", "--model", "coder-a", "--since", "1970-01-01T01:00Z")
    assert cycles(*late) == ["benchmark", "two-fixes"]
    assert cycles("--source", "humaneval") == ["benchmark"]
    assert cycles("--any-verdict-mode", "--min-score", "0.5") == ["first-try", "fixed", "forgeable"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--format", "csv"), "--format: unknown format 'csv'"),
        (("--source", "file"), "no solution matches (left out: 5 by source, 1 by not judged"),
        (("--min-score", "0.95"), "no solution matches (left out: 4 by review score, 1 by"),
        (("--min-score", "2"), "not a review score from 0 to 1"),
        (("--since", "yesterday"), "not an ISO 8601 date or time"),
        (("--until", "1970-01-01"), "no solution matches (left out: 4 by time, 1 by"),
    ],
)
def test_a_bad_argument_exits_2_and_writes_nothing(
    tables: Path, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    out = tmp_path / "out"
    done = export("--tables", str(tables), "--out", str(out), *args)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert not out.exists()


def test_an_archive_without_what_was_asked_for_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = export("--tables", str(tmp_path / "nowhere"), "--out", str(out))
    assert missing.returncode == 2 and "no archive in" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    CycleArchive(empty).attempts.path.write_text("cycle_id,attempt\n")
    done = export("--tables", str(empty), "--out", str(out))
    assert done.returncode == 2 and "holds no attempt yet" in done.stderr
    first_try_only = tmp_path / "first"
    _cycle(CycleArchive(first_try_only), "only", [(GOOD, "passed")])
    done = export("--tables", str(first_try_only), "--out", str(out), "--format", "repair")
    assert done.returncode == 2 and "no cycle passed after a fix" in done.stderr
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "attempts.csv").write_bytes(b'cycle_id,attempt\n"open quote,1\n')
    done = export("--tables", str(unreadable), "--out", str(out))
    assert done.returncode == 2 and "cannot read the archive" in done.stderr
    assert not out.exists()


def test_an_empty_dataset_still_has_its_columns(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    _cycle(CycleArchive(folder), "only", [(GOOD, "passed")])
    out = tmp_path / "out"
    assert export("--tables", str(folder), "--out", str(out), "--format", "all").returncode == 0
    repair = pd.read_parquet(out / "repair.parquet")
    assert repair.empty and list(repair.columns)[:2] == ["prompt", "completion"]
    assert (out / "repair.jsonl").read_text() == ""


def test_the_folder_holds_this_export_only(tables: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export("--tables", str(tables), "--out", str(out), "--format", "all").returncode == 0
    (out / "notes.txt").write_text("mine")
    assert export("--tables", str(tables), "--out", str(out), "--format", "repair").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "notes.txt", "repair.jsonl"]


def test_an_export_taken_while_cycles_run_holds_only_finished_ones(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    archive = CycleArchive(folder)
    _cycle(archive, "done", [(GOOD, "passed")])
    _cycle(archive, "later", [(BAD, "failed")], finished=False)
    out = tmp_path / "out"
    assert export("--tables", str(folder), "--out", str(out)).returncode == 0
    assert [r["cycle_id"] for r in _lines(out / "sft.jsonl")] == ["done"]


def test_the_dashboard_offers_what_the_default_export_writes(tables: Path, tmp_path: Path) -> None:
    from aimesh.web.dataset import exportable, sft_jsonl

    archive = CycleArchive(tables)
    cycles, attempts = archive.cycles.read(), archive.attempts.read()
    assert exportable(cycles, attempts) == {
        "records": {"sft": 2, "sft_flat": 2, "repair": 1, "preference": 2},
        "duplicates": {"sft": 2, "sft_flat": 2, "repair": 0, "preference": 0},
        "left_out": {"not judged in the split mode": 1, "benchmark": 1},
        "download": {"sft": "/api/dataset/sft.jsonl"},
    }
    out = tmp_path / "out"
    assert export("--tables", str(tables), "--out", str(out)).returncode == 0
    assert sft_jsonl(cycles, attempts) == (out / "sft.jsonl").read_bytes()
