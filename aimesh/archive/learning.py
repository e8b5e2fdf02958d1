"""Whether the loop learns, measured from the archive of any run, finished or still going.

Every rate counts only what has been decided. A first-try rate over finished cycles alone leaves
out every cycle still being fixed, which are exactly the ones whose first try failed (a real run
showed "100% pass 1st try" when 3 of 12 first attempts had passed). So:
- first-try pass rate: passed first attempts over judged first attempts;
- pass after k fixes: cycles passed by attempt k + 1, over cycles whose attempt k + 1 was judged
  or that ended sooner;
- fixes by error type: each failed attempt that got a next attempt, by its error type, and how
  many of those next attempts passed;
- memory: the pass rate of attempts that had memories recalled into their prompt, and of those
  that had none;
- the reviewer's agreement with the verdicts: mean score of passing and failing attempts, and the
  chance that a passing attempt scores above a failing one (0.5 is no signal; ties count half).
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series([float("nan")] * len(frame), index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 3) if total else None


def _passed(frame: pd.DataFrame) -> pd.Series:
    return frame["status"].astype(str) == "passed"


def first_try(attempts: pd.DataFrame) -> dict[str, Any]:
    firsts = attempts[_numbers(attempts, "attempt") == 1]
    hits = int(_passed(firsts).sum())
    return {"passed": hits, "judged": len(firsts), "rate": _rate(hits, len(firsts))}


def pass_after_fixes(
    attempts: pd.DataFrame, cycles: pd.DataFrame, max_fixes: int
) -> list[dict[str, Any]]:
    """For k = 0..max_fixes: cycles passed by attempt k + 1 over cycles decided that far."""
    numbers = _numbers(attempts, "attempt")
    passed_at = numbers[_passed(attempts)].groupby(attempts["cycle_id"]).min()
    last_judged = numbers.groupby(attempts["cycle_id"]).max()
    ended = set(cycles["cycle_id"].astype(str)) if len(cycles) else set()
    rows = []
    for k in range(max_fixes + 1):
        decided = hits = 0
        for cycle_id, last in last_judged.items():
            at = passed_at.get(cycle_id)
            if last >= k + 1 or str(cycle_id) in ended or (at is not None and at <= k + 1):
                decided += 1
                hits += int(at is not None and not pd.isna(at) and at <= k + 1)
        rows.append({"fixes": k, "passed": hits, "decided": decided, "rate": _rate(hits, decided)})
    return rows


def fixes_by_error(attempts: pd.DataFrame) -> dict[str, dict[str, int]]:
    """error type of a failed attempt -> fixes tried after it, and how many of them passed."""
    numbers = _numbers(attempts, "attempt")
    by_key = {
        (str(c), int(a)): passed
        for c, a, passed in zip(attempts["cycle_id"], numbers, _passed(attempts), strict=True)
        if not pd.isna(a)
    }
    found: dict[str, dict[str, int]] = {}
    for cycle_id, attempt, passed, error_type in zip(
        attempts["cycle_id"], numbers, _passed(attempts), attempts["error_type"], strict=True
    ):
        if passed or pd.isna(attempt):
            continue
        after = by_key.get((str(cycle_id), int(attempt) + 1))
        if after is None:
            continue
        row = found.setdefault(str(error_type) or "unknown", {"tried": 0, "succeeded": 0})
        row["tried"] += 1
        row["succeeded"] += int(after)
    return dict(sorted(found.items(), key=lambda item: -item[1]["tried"]))


def memory_effect(attempts: pd.DataFrame) -> dict[str, Any]:
    used = _numbers(attempts, "memories_used").fillna(0) > 0
    passed = _passed(attempts)
    with_memory, without = int(used.sum()), int((~used).sum())
    return {
        "with_memories": {
            "attempts": with_memory,
            "rate": _rate(int((passed & used).sum()), with_memory),
        },
        "without": {"attempts": without, "rate": _rate(int((passed & ~used).sum()), without)},
    }


def review_agreement(attempts: pd.DataFrame) -> dict[str, Any]:
    scores = _numbers(attempts, "review_score")
    passed = _passed(attempts)
    good, bad = scores[passed].dropna().tolist(), scores[~passed].dropna().tolist()
    pairs = len(good) * len(bad)
    above = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
    return {
        "mean_score_passed": round(sum(good) / len(good), 3) if good else None,
        "mean_score_failed": round(sum(bad) / len(bad), 3) if bad else None,
        "scored_passed": len(good),
        "scored_failed": len(bad),
        "agreement": round(above / pairs, 3) if pairs else None,
    }


def learning(attempts: pd.DataFrame, cycles: pd.DataFrame, max_fixes: int) -> dict[str, Any]:
    """Every figure above, as one JSON-ready dict."""
    return {
        "first_try": first_try(attempts),
        "pass_after_fixes": pass_after_fixes(attempts, cycles, max_fixes),
        "fixes_by_error": fixes_by_error(attempts),
        "memory": memory_effect(attempts),
        "review": review_agreement(attempts),
    }
