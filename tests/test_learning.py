"""The learning figures, from an archive written by the project's own archive code.

Four cycles, figured by hand: A passes first; B fails on a NameError, then its fix (with
memories) passes; C fails twice on assertions and is still going; D times out and gives up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aimesh.archive import CycleArchive
from aimesh.archive.learning import learning

ATTEMPTS = [
    ("A", 1, "passed", "", 0.9, 0),
    ("B", 1, "failed", "NameError", 0.9, 0),
    ("B", 2, "passed", "", 0.8, 2),
    ("C", 1, "failed", "AssertionError", 0.2, 0),
    ("C", 2, "failed", "AssertionError", 0.3, 1),
    ("D", 1, "timeout", "Timeout", 0.5, 0),
]
CYCLES = [("A", "passed", 1), ("B", "passed", 2), ("D", "gave_up", 1)]


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    archive = CycleArchive(tmp_path / "tables")
    archive.attempts.append(
        [
            {
                "cycle_id": c,
                "attempt": a,
                "status": s,
                "passed": s == "passed",
                "error_type": e,
                "review_score": score,
                "memories_used": m,
            }
            for c, a, s, e, score, m in ATTEMPTS
        ]
    )
    archive.cycles.append(
        [{"cycle_id": c, "outcome": o, "attempts": n, "source": "test"} for c, o, n in CYCLES]
    )
    return tmp_path / "tables"


def test_rates_count_only_what_is_decided(tables: Path) -> None:
    archive = CycleArchive(tables)
    figures = learning(archive.attempts.read(), archive.cycles.read(), max_fixes=2)
    assert figures["first_try"] == {"passed": 1, "judged": 4, "rate": 0.25}
    assert [(r["passed"], r["decided"]) for r in figures["pass_after_fixes"]] == [
        (1, 4),  # every cycle has a judged first attempt
        (2, 4),  # B passed on its fix; C's fix was judged; A and D had ended
        (2, 3),  # C has not had its third attempt yet: undecided, left out
    ]
    assert figures["fixes_by_error"] == {
        "NameError": {"tried": 1, "succeeded": 1},
        "AssertionError": {"tried": 1, "succeeded": 0},
    }, "D's timeout got no fix, and C's second failure none yet"
    assert figures["memory"] == {
        "with_memories": {"attempts": 2, "rate": 0.5},
        "without": {"attempts": 4, "rate": 0.25},
    }
    review = figures["review"]
    assert (review["mean_score_passed"], review["mean_score_failed"]) == (0.85, 0.475)
    assert review["agreement"] == pytest.approx(6.5 / 8, abs=1e-3)


def test_aimesh_report_prints_them(tables: Path) -> None:
    env = {**os.environ, "AIMESH_TABLES_DIR": str(tables), "AIMESH_MAX_FIXES": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "aimesh", "report"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "first try: 1/4 passed (25.0%)"
    assert "passed within 2 fix(es): 2/3 (66.7%)" in lines
    assert "  NameError: 1 -> 1" in lines
    empty = subprocess.run(
        [sys.executable, "-m", "aimesh", "report", "--tables", str(tables / "nowhere")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert empty.returncode == 2 and "no archive" in empty.stderr
