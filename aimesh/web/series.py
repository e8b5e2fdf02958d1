"""Figures over time for the dashboard's charts, from the CSV archive.

Time is cut into at most `buckets` equal slices from the first finished attempt to now, so a
chart has a bounded number of points however long the run; each slice counts what finished
in it (cycles, attempts = one solution, one verdict and one review each) and averages the
latencies of the agents' work.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from aimesh.web.summary import mean_or_none

LATENCIES = {"consumer": "llm_latency_ms", "sandbox": "sandbox_ms", "reviewer": "review_latency_ms"}
MIN_WIDTH_S = 1.0


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(dtype=float, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def time_series(
    cycles: pd.DataFrame, attempts: pd.DataFrame, now: float, buckets: int = 30
) -> dict[str, Any]:
    """Per slice: cycles finished and passed, attempts, mean latency per agent; and the
    histogram of attempts per cycle by outcome."""
    ends = pd.concat([_numbers(cycles, "finished_at"), _numbers(attempts, "finished_at")]).dropna()
    if ends.empty:
        return {"start": None, "width_s": None, "buckets": [], "retries": _retries(cycles)}
    start = float(ends.min())
    width = max((max(now, float(ends.max())) - start) / buckets, MIN_WIDTH_S)
    count = min(buckets, math.floor((max(now, float(ends.max())) - start) / width) + 1)
    cycle_slot = ((_numbers(cycles, "finished_at") - start) // width).clip(0, count - 1)
    attempt_slot = ((_numbers(attempts, "finished_at") - start) // width).clip(0, count - 1)
    passed = cycles.get("outcome", pd.Series(dtype=str)) == "passed"
    rows = []
    for slot in range(count):
        in_cycles = cycle_slot == slot
        in_attempts = attempts[attempt_slot == slot]
        done = int(in_cycles.sum())
        rows.append(
            {
                "t": round(start + slot * width, 3),
                "cycles": done,
                "passed": int((in_cycles & passed).sum()),
                "attempts": len(in_attempts),
                "latency_ms": {
                    agent: mean_or_none(_numbers(in_attempts, column), digits=1)
                    for agent, column in LATENCIES.items()
                },
            }
        )
    return {
        "start": start,
        "width_s": round(width, 3),
        "buckets": rows,
        "retries": _retries(cycles),
    }


def _retries(cycles: pd.DataFrame) -> list[dict[str, int]]:
    tries = _numbers(cycles, "attempts")
    histogram = []
    for value in sorted(int(v) for v in tries.dropna().unique()):
        chosen = cycles[tries == value]
        histogram.append(
            {
                "attempts": value,
                "passed": int((chosen["outcome"] == "passed").sum()),
                "gave_up": int((chosen["outcome"] == "gave_up").sum()),
            }
        )
    return histogram
