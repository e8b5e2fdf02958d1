"""The archive's rules: the join completes rows in any order; no key is ever written twice."""

import itertools

import pandas as pd

from aimesh.archive import ATTEMPT_COLUMNS, CYCLE_COLUMNS, CsvArchive, CycleJoin
from aimesh.archive.csv_archive import csv_text
from aimesh.archive.join import new_state


def parts(attempt: int, outcome: str) -> dict[str, dict]:
    return {
        "task": {"cycle_id": "c", "attempt": attempt, "title": "T", "description": "d",
                 "prompt": f"p{attempt}", "created_at": 100.0, "source": "test"},
        "solution": {"code": f"code{attempt}", "model": "m", "latency_ms": 5.0, "memories": []},
        "verdict": {"status": "passed" if outcome == "passed" else "failed",
                    "passed": outcome == "passed", "outcome": outcome,
                    "created_at": 101.0 + attempt},
        "review": {"score": 0.5, "critique": "ok", "created_at": 101.5 + attempt},
    }  # fmt: skip


def test_rows_complete_in_any_arrival_order_and_duplicates_change_nothing():
    for order in itertools.permutations(("task", "solution", "verdict", "review")):
        state = new_state()
        rows = []
        for attempt, outcome in ((1, ""), (2, "passed")):
            for part in order:
                for _ in range(2):  # every part delivered twice
                    CycleJoin.add(state, part, attempt, parts(attempt, outcome)[part])
                    written = CycleJoin.complete_attempts(state)
                    CycleJoin.mark_written(state, written)
                    rows += written
        assert [row["attempt"] for row in rows] == [1, 2]
        cycle = CycleJoin.finished_cycle(state)
        assert cycle and cycle["outcome"] == "passed" and cycle["attempts"] == 2
        closed = CycleJoin.close(state)
        assert CycleJoin.finished_cycle(closed) is None
        assert not CycleJoin.add(closed, "task", 1, parts(1, "")["task"])


def test_the_cycle_row_waits_for_every_attempt_row():
    state = new_state()
    final = parts(2, "gave_up")
    for part in ("task", "solution", "verdict", "review"):
        CycleJoin.add(state, part, 2, final[part])
    CycleJoin.mark_written(state, CycleJoin.complete_attempts(state))
    assert CycleJoin.finished_cycle(state) is None, "attempt 1 has no row yet"


def test_two_archives_on_one_file_never_repeat_a_key(tmp_path):
    path = tmp_path / "attempts.csv"
    one = CsvArchive(path, ATTEMPT_COLUMNS, ("cycle_id", "attempt"))
    two = CsvArchive(path, ATTEMPT_COLUMNS, ("cycle_id", "attempt"))
    row = {"cycle_id": "c", "attempt": 1, "code": "x = 'a,\"b\"\\n'\nprint(x)"}
    assert one.append([row, row]) == 1
    assert two.append([row]) == 0, "the second writer sees the first one's row"
    assert two.append([{**row, "attempt": 2}]) == 1
    assert one.append([{**row, "attempt": 2}]) == 0
    frame = one.read()
    assert list(frame.columns) == list(ATTEMPT_COLUMNS)
    assert frame["attempt"].tolist() == ["1", "2"]
    assert frame["code"][0] == row["code"]
    assert path.read_text().count("cycle_id,attempt") == 1, "header exactly once"


def test_an_empty_archive_reads_as_its_columns(tmp_path):
    frame = CsvArchive(tmp_path / "cycles.csv", CYCLE_COLUMNS, ("cycle_id",)).read()
    assert frame.empty and list(frame.columns) == list(CYCLE_COLUMNS)


def test_a_file_with_older_columns_is_kept_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "attempts.csv"
    path.write_text("cycle_id,attempt,code\nold,1,x = 1\n")
    archive = CsvArchive(path, ATTEMPT_COLUMNS, ("cycle_id", "attempt"))
    assert archive.append([{"cycle_id": "new", "attempt": 1, "memories": '["a lesson"]'}]) == 1
    frame = archive.read()
    assert list(frame.columns) == list(ATTEMPT_COLUMNS) and list(frame["cycle_id"]) == ["new"]
    (aside,) = [p for p in tmp_path.iterdir() if p.name != "attempts.csv"]
    assert aside.read_text() == "cycle_id,attempt,code\nold,1,x = 1\n"


def test_rows_are_written_as_pandas_writes_them_and_read_back_whole(tmp_path):
    columns = ["cycle_id", "text", "score", "ok", "missing"]
    rows = [
        {"cycle_id": "a", "text": 'plain, with "quotes"\nand a newline', "score": 0.1, "ok": True},
        {"cycle_id": "b", "text": "progress 10%\rprogress 100%", "score": float("nan")},
        {"cycle_id": "c", "text": "", "score": 7, "ok": False, "missing": None},
    ]
    expected = pd.DataFrame(rows[:1], columns=columns).to_csv(index=False, lineterminator="\n")
    assert csv_text(rows[:1], columns, header=True) == expected
    archive = CsvArchive(tmp_path / "t.csv", columns, ["cycle_id"])
    assert archive.append(rows) == 3
    frame = archive.read()
    assert list(frame["cycle_id"]) == ["a", "b", "c"]
    assert list(frame["text"]) == [rows[0]["text"], rows[1]["text"], ""]
    assert list(frame["score"]) == ["0.1", "", "7"]
    assert list(frame["ok"]) == ["True", "", "False"]
