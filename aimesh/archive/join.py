"""The join of task, solution, verdict and review per attempt, as plain data.

Parts arrive in any order, possibly twice. The state is one JSON-friendly dict per cycle (kept in
a Faust table by the Persistence agent); this module says when an attempt row or the cycle row
is complete. It knows nothing of Faust, so the rules are tested on their own.
"""

from __future__ import annotations

import json
from typing import Any

PARTS = ("task", "solution", "verdict", "review")

ATTEMPT_COLUMNS = (
    "cycle_id", "attempt", "title", "task", "code", "status", "passed", "error_type", "error",
    "sandbox_ms", "review_score", "critique", "review_valid", "model", "llm_latency_ms",
    "prompt_tokens", "completion_tokens", "memories_used", "finished_at", "memories",
    "review_latency_ms", "verdict_mode",
)  # fmt: skip
CYCLE_COLUMNS = (
    "cycle_id", "title", "source", "outcome", "attempts", "started_at", "finished_at",
    "duration_s",
)  # fmt: skip


def new_state() -> dict[str, Any]:
    return {"attempts": {}, "outcome": "", "final_attempt": 0, "closed": False}


class CycleJoin:
    """The join's rules, as functions over one cycle's state dict (which they update in place)."""

    @staticmethod
    def add(state: dict[str, Any], part: str, attempt: int, data: dict[str, Any]) -> bool:
        """Record one part; False when it changes nothing (a redelivery or a closed cycle)."""
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}")
        if state["closed"]:
            return False
        slot = state["attempts"].setdefault(str(attempt), {"written": False})
        if part in slot or slot["written"]:
            return False
        slot[part] = data
        if part == "verdict" and data.get("outcome"):
            state["outcome"] = data["outcome"]
            state["final_attempt"] = attempt
        return True

    @staticmethod
    def complete_attempts(state: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows for attempts that have all four parts and no row yet."""
        rows = []
        for number, slot in sorted(state["attempts"].items(), key=lambda item: int(item[0])):
            if not slot["written"] and all(part in slot for part in PARTS):
                rows.append(attempt_row(int(number), slot))
        return rows

    @staticmethod
    def mark_written(state: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """Flag attempts archived and drop their bulky parts; the task stays for the cycle row."""
        for row in rows:
            slot = state["attempts"][str(row["attempt"])]
            for part in ("solution", "verdict", "review"):
                slot.pop(part, None)
            slot["written"] = True

    @staticmethod
    def finished_cycle(state: dict[str, Any]) -> dict[str, Any] | None:
        """The cycle row once its end is known and every attempt up to it has its row."""
        final = state["final_attempt"]
        if state["closed"] or not final:
            return None
        slots = state["attempts"]
        if not all(slots.get(str(n), {}).get("written") for n in range(1, final + 1)):
            return None
        first_task = slots["1"]["task"]
        last = slots[str(final)]
        return {
            "cycle_id": first_task["cycle_id"],
            "title": first_task["title"],
            "source": first_task.get("source", ""),
            "outcome": state["outcome"],
            "attempts": final,
            "started_at": first_task.get("created_at", 0.0),
            "finished_at": last.get("finished_at", 0.0),
            "duration_s": round(
                last.get("finished_at", 0.0) - first_task.get("created_at", 0.0), 3
            ),
        }

    @staticmethod
    def close(state: dict[str, Any]) -> dict[str, Any]:
        """Keep only a tombstone, so late duplicates of a finished cycle change nothing."""
        return {"attempts": {}, "outcome": state["outcome"], "final_attempt": 0, "closed": True}


def attempt_row(number: int, slot: dict[str, Any]) -> dict[str, Any]:
    task, solution, verdict, review = (slot[part] for part in PARTS)
    slot["finished_at"] = max(verdict.get("created_at", 0.0), review.get("created_at", 0.0))
    return {
        "cycle_id": task["cycle_id"],
        "attempt": number,
        "title": task["title"],
        "task": task.get("prompt") or task["description"],
        "code": solution["code"],
        "status": verdict["status"],
        "passed": verdict["passed"],
        "error_type": verdict.get("error_type", ""),
        "error": verdict.get("error", ""),
        "sandbox_ms": round(verdict.get("duration_ms", 0.0), 1),
        "review_score": "" if review.get("score") is None else review["score"],
        "critique": review.get("critique", ""),
        "review_valid": review.get("valid", True),
        "model": solution.get("model", ""),
        "llm_latency_ms": round(solution.get("latency_ms", 0.0), 1),
        "prompt_tokens": solution.get("prompt_tokens", 0),
        "completion_tokens": solution.get("completion_tokens", 0),
        "memories_used": len(solution.get("memories", [])),
        "finished_at": slot["finished_at"],
        "memories": json.dumps(solution.get("memories", [])),  # what recall gave the prompt
        "review_latency_ms": round(review.get("latency_ms", 0.0), 1),
        "verdict_mode": verdict.get("mode", ""),  # "split": no program could have faked it
    }
