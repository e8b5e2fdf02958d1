"""Cycles for the dashboard: pages of the archive, newest first, and one cycle in full.

Pages are addressed by position in the archive (`before`), so a page stays the same while new
cycles arrive at the top, and a request touches only its own rows: fast with 10,000 cycles.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

ATTEMPT_BRIEF = ("attempt", "status", "error_type", "review_score")


def _attempts_of(attempts: pd.DataFrame, cycle_ids: list[str]) -> dict[str, pd.DataFrame]:
    if not len(attempts) or not cycle_ids:
        return {}
    chosen = attempts[attempts["cycle_id"].isin(cycle_ids)]
    order = pd.to_numeric(chosen["attempt"], errors="coerce")
    chosen = chosen.assign(_order=order).sort_values("_order").drop(columns="_order")
    return {key: group for key, group in chosen.groupby("cycle_id")}


def cycles_page(
    cycles: pd.DataFrame, attempts: pd.DataFrame, limit: int, before: int | None
) -> dict[str, Any]:
    """Up to `limit` cycles that finished before position `before` (default: the newest), each
    with a brief of its attempts; `next` is the `before` of the following page, or None."""
    total = len(cycles)
    end = total if before is None else max(0, min(before, total))
    start = max(0, end - limit)
    page = cycles.iloc[start:end].iloc[::-1]
    by_cycle = _attempts_of(attempts, list(page["cycle_id"]))
    rows = []
    for row in page.to_dict("records"):
        group = by_cycle.get(row["cycle_id"])
        briefs = [] if group is None else group[list(ATTEMPT_BRIEF)].to_dict("records")
        last_error = "" if group is None else str(group.iloc[-1]["error"])
        rows.append({**row, "attempt_briefs": briefs, "last_error": last_error[:300]})
    page_info = {"cycles": rows, "total": total, "next": start if start > 0 else None}
    page_info["running"] = running_cycles(cycles, attempts, limit) if before is None else []
    return page_info


def running_cycles(cycles: pd.DataFrame, attempts: pd.DataFrame, limit: int) -> list[dict]:
    """Cycles with archived attempts that have not finished yet, newest first."""
    if not len(attempts):
        return []
    finished = set(cycles["cycle_id"]) if len(cycles) else set()
    recent = attempts.tail(limit * 4)  # enough rows to find `limit` cycles, never the whole file
    open_ids = [c for c in dict.fromkeys(reversed(list(recent["cycle_id"]))) if c not in finished]
    by_cycle = _attempts_of(attempts, open_ids[:limit])
    rows = []
    for cycle_id in open_ids[:limit]:
        group = by_cycle[cycle_id]
        last = group.iloc[-1]
        rows.append(
            {
                "cycle_id": cycle_id,
                "title": last["title"],
                "outcome": "running",
                "attempts": len(group),
                "attempt_briefs": group[list(ATTEMPT_BRIEF)].to_dict("records"),
                "last_error": str(last["error"])[:300],
            }
        )
    return rows


def cycle_detail(
    cycles: pd.DataFrame, attempts: pd.DataFrame, cycle_id: str
) -> dict[str, Any] | None:
    """The cycle's row (empty while it runs) and every archived attempt with its code, verdict,
    error, review and the memories recalled for it; None when the archive has neither."""
    found = cycles[cycles["cycle_id"] == cycle_id] if len(cycles) else cycles
    group = _attempts_of(attempts, [cycle_id]).get(cycle_id)
    if not len(found) and group is None:
        return None
    rows = [] if group is None else group.to_dict("records")
    for row in rows:
        row["memories"] = _memories(row.get("memories"))
    return {
        "cycle_id": cycle_id,
        "cycle": found.iloc[-1].to_dict() if len(found) else None,
        "attempts": rows,
    }


def _memories(raw: object) -> list[str]:
    try:
        value = json.loads(str(raw)) if raw not in (None, "") else []
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


def latest_retrievals(attempts: pd.DataFrame, limit: int) -> list[dict[str, Any]]:
    """The newest attempts whose prompt was given memories, with what was recalled."""
    if not len(attempts) or "memories_used" not in attempts:
        return []
    used = attempts[pd.to_numeric(attempts["memories_used"], errors="coerce") > 0]
    result = []
    for row in used.tail(limit).iloc[::-1].to_dict("records"):
        result.append(
            {
                "cycle_id": row["cycle_id"],
                "attempt": row["attempt"],
                "title": row["title"],
                "memories": _memories(row.get("memories")),
            }
        )
    return result
