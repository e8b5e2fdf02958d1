"""The dashboard's figures from the archive, on small frames: pages, one cycle, time slices."""

from __future__ import annotations

import json

import pandas as pd

from aimesh.web.cycles import cycle_detail, cycles_page, latest_retrievals
from aimesh.web.series import time_series


def _archive(count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    cycles = pd.DataFrame(
        [
            {"cycle_id": f"c{n}", "title": f"T{n}", "outcome": "passed" if n % 2 else "gave_up",
             "attempts": 1 + n % 3, "finished_at": 100.0 + n}
            for n in range(count)
        ]
    )  # fmt: skip
    attempts = pd.DataFrame(
        [
            {"cycle_id": f"c{n}", "attempt": a, "title": f"T{n}", "status": "failed",
             "error_type": "AssertionError", "error": f"e{n}.{a}", "review_score": 0.5,
             "llm_latency_ms": 10.0, "sandbox_ms": 2.0, "review_latency_ms": 5.0,
             "finished_at": 99.0 + n, "memories_used": a - 1,
             "memories": json.dumps([f"m{n}"] * (a - 1))}
            for n in range(count)
            for a in range(1 + n % 3, 0, -1)  # stored out of order on purpose
        ]
    )  # fmt: skip
    return cycles, attempts


def test_pages_walk_back_from_the_newest_without_overlap() -> None:
    cycles, attempts = _archive(45)
    seen, before = [], None
    while True:
        page = cycles_page(cycles, attempts, 20, before)
        seen += [row["cycle_id"] for row in page["cycles"]]
        if page["next"] is None:
            break
        before = page["next"]
    assert seen == [f"c{n}" for n in range(44, -1, -1)]
    newest = cycles_page(cycles, attempts, 1, None)["cycles"][0]
    assert [b["attempt"] for b in newest["attempt_briefs"]] == [1, 2, 3]
    assert newest["last_error"] == "e44.3"
    assert cycles_page(cycles, attempts, 20, 0) == {
        "cycles": [], "total": 45, "next": None, "running": []
    }  # fmt: skip
    unfinished = cycles_page(cycles.iloc[:40], attempts, 3, None)["running"]
    assert [(r["cycle_id"], r["outcome"], r["attempts"]) for r in unfinished] == [
        ("c44", "running", 3), ("c43", "running", 2), ("c42", "running", 1)
    ]  # fmt: skip


def test_one_cycle_in_full_and_the_latest_retrievals() -> None:
    cycles, attempts = _archive(5)
    detail = cycle_detail(cycles, attempts, "c2")
    assert detail is not None and detail["cycle"]["outcome"] == "gave_up"
    assert [a["attempt"] for a in detail["attempts"]] == [1, 2, 3]
    assert detail["attempts"][2]["memories"] == ["m2", "m2"]
    assert cycle_detail(cycles, attempts, "nope") is None
    running = cycle_detail(cycles.iloc[:0], attempts, "c1")  # attempts archived, cycle not over
    assert running is not None and running["cycle"] is None and len(running["attempts"]) == 2
    latest = latest_retrievals(attempts, 2)
    assert [(r["cycle_id"], r["memories"]) for r in latest] == [("c4", ["m4"]), ("c2", ["m2"])]


def test_time_slices_count_what_finished_and_retries_by_outcome() -> None:
    cycles, attempts = _archive(30)
    series = time_series(cycles, attempts, now=130.0, buckets=10)
    assert len(series["buckets"]) == 10
    assert sum(b["cycles"] for b in series["buckets"]) == 30
    assert sum(b["attempts"] for b in series["buckets"]) == len(attempts)
    assert series["buckets"][0]["latency_ms"] == {"consumer": 10.0, "sandbox": 2.0, "reviewer": 5.0}
    assert series["retries"] == [
        {"attempts": 1, "passed": 5, "gave_up": 5},
        {"attempts": 2, "passed": 5, "gave_up": 5},
        {"attempts": 3, "passed": 5, "gave_up": 5},
    ]
    empty = time_series(cycles.iloc[:0], attempts.iloc[:0], now=1.0)
    assert empty["buckets"] == [] and empty["retries"] == []
