"""Figures about the run, computed from the CSV archive: the one record every worker shares."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aimesh.archive.learning import learning


def mean_or_none(series: pd.Series, digits: int = 3) -> float | None:
    """The mean of the numbers in a column (text cells and blanks ignored); None when none."""
    numbers = pd.to_numeric(series, errors="coerce").dropna()
    return None if numbers.empty else round(float(numbers.mean()), digits)


def summarize(cycles: pd.DataFrame, attempts: pd.DataFrame, max_fixes: int = 3) -> dict[str, Any]:
    """Counts by status and outcome, pass rates (first try, after fixes), mean attempts, latency,
    and the learning figures (aimesh/archive/learning.py). The first-try rate is over judged
    first attempts: over finished cycles it would leave out every cycle still being fixed."""
    learned = learning(attempts, cycles, max_fixes)
    finished = len(cycles)
    outcomes = cycles["outcome"].value_counts().to_dict() if finished else {}
    passed = int(outcomes.get("passed", 0))
    attempts_n = pd.to_numeric(cycles.get("attempts", pd.Series(dtype=float)), errors="coerce")
    statuses = attempts["status"].value_counts().to_dict() if len(attempts) else {}
    seen = set(attempts["cycle_id"]) | set(cycles["cycle_id"])
    return {
        "tasks_seen": len(seen),  # with an archived attempt, finished or not
        "cycles_finished": finished,
        "passed": passed,
        "gave_up": int(outcomes.get("gave_up", 0)),
        "attempts": len(attempts),
        "attempts_by_status": {str(k): int(v) for k, v in statuses.items()},
        "pass_rate_first_try": learned["first_try"]["rate"],
        "pass_rate_after_fixes": round(passed / finished, 3) if finished else None,
        "mean_attempts": mean_or_none(attempts_n) if finished else None,
        "mean_llm_latency_ms": mean_or_none(attempts["llm_latency_ms"]) if len(attempts) else None,
        "mean_review_score": mean_or_none(attempts["review_score"]) if len(attempts) else None,
        "learning": learned,
    }
