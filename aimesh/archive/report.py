"""`aimesh report`: the learning figures of any run, printed from its archive (no broker needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aimesh.archive import CycleArchive
from aimesh.archive.learning import learning


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def report_lines(figures: dict[str, Any], cycles: int, attempts: int) -> list[str]:
    first = figures["first_try"]
    lines = [
        f"cycles finished {cycles}, attempts archived {attempts}",
        f"first try: {first['passed']}/{first['judged']} passed ({_percent(first['rate'])})",
    ]
    for row in figures["pass_after_fixes"]:
        lines.append(
            f"passed within {row['fixes']} fix(es): {row['passed']}/{row['decided']} "
            f"({_percent(row['rate'])})"
        )
    lines.append("fixes by the error they fixed (tried -> passed):")
    for error, row in figures["fixes_by_error"].items() or [("none yet", None)]:
        lines.append(f"  {error}: {row['tried']} -> {row['succeeded']}" if row else f"  {error}")
    memory = figures["memory"]
    lines.append(
        f"attempts with memories: {memory['with_memories']['attempts']} "
        f"({_percent(memory['with_memories']['rate'])} passed); without: "
        f"{memory['without']['attempts']} ({_percent(memory['without']['rate'])} passed)"
    )
    review = figures["review"]
    lines.append(
        f"review scores: passed {review['mean_score_passed']} ({review['scored_passed']} scored), "
        f"failed {review['mean_score_failed']} ({review['scored_failed']} scored); "
        f"agreement with verdicts {review['agreement']} (0.5 = no signal)"
    )
    return lines


def report(tables_dir: Path, max_fixes: int) -> list[str]:
    archive = CycleArchive(tables_dir)
    cycles, attempts = archive.cycles.read(), archive.attempts.read()
    return report_lines(learning(attempts, cycles, max_fixes), len(cycles), len(attempts))
