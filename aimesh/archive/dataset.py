"""The archive as data to train and evaluate with: SFT records, repair pairs, preference pairs.

Only what can be trusted, and each thing once:
- a solution is an attempt that passed in the split verdict mode, where the program could not
  have forged its pass (`Selection.any_verdict_mode` lifts that, for archives older than it);
- only finished cycles (those with their row in cycles.csv) are read, so an export taken while a
  run goes on holds what is finished and nothing half-joined;
- benchmark tasks (HumanEval) are marked `benchmark` and left out unless asked for, so nobody
  trains on a test set by accident;
- duplicates are dropped by a hash of the normalized code (comments, blank lines and spacing
  ignored, code and strings kept), the first finished kept.
"""

from __future__ import annotations

import hashlib
import io
import tokenize
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aimesh.cycle.prompts import CODER_SYSTEM

SPLIT = "split"
BENCHMARK_SOURCES = frozenset({"humaneval"})
DATASETS = ("sft", "sft_flat", "repair", "preference")
PROVENANCE = (
    ("cycle_id", "string", "the task's root id: every attempt of one task shares it"),
    ("attempt", "int", "the attempt that passed (1: first try)"),
    ("title", "string", "the task's title"),
    ("model", "string", "the model that wrote the passing code"),
    ("verdict_mode", "string", "how the verdict was reached: split, the unforgeable mode"),
    ("status", "string", "the sandbox's verdict on the code: passed"),
    ("review_score", "float or null", "the Reviewer's score from 0 to 1 (null: not reviewed)"),
    ("source", "string", "where the task came from: llm, file, humaneval"),
    ("benchmark", "bool", "the task is from a benchmark (left out unless asked for)"),
    ("finished_at", "float", "when the cycle finished, in seconds since the epoch (UTC)"),
    ("code_sha256", "string", "sha256 of the passing code, normalized (the duplicate key)"),
)
SCHEMA: dict[str, tuple[tuple[str, str, str], ...]] = {
    "sft": (
        ("messages", "list of {role, content}", "system, user (the task), assistant (the code)"),
    ),
    "sft_flat": (
        ("prompt", "string", "the task, as the model was first asked it"),
        ("completion", "string", "the code that passed"),
    ),
    "repair": (
        (
            "prompt",
            "string",
            "what the fixing model was asked: the failing code, its error, the task",
        ),
        ("completion", "string", "the fix that passed"),
        ("task", "string", "the task, as first asked"),
        ("failing_code", "string", "the code of the attempt before, which failed"),
        ("error_type", "string", "its error's type"),
        ("error", "string", "its error, as the sandbox reported it"),
        ("failing_attempt", "int", "the failed attempt's number"),
        ("failing_sha256", "string", "sha256 of the failing code, normalized"),
    ),
    "preference": (
        ("prompt", "string", "the task, as first asked"),
        ("chosen", "string", "the code that passed"),
        ("rejected", "string", "the code of a failed attempt of the same task"),
        ("rejected_attempt", "int", "that attempt's number"),
        ("rejected_status", "string", "its verdict: failed, error, timeout, ..."),
        ("rejected_error", "string", "its error"),
        ("rejected_sha256", "string", "sha256 of the rejected code, normalized"),
    ),
}
"""Each dataset's own fields, followed in every record by PROVENANCE's."""
_LAYOUT = {tokenize.NEWLINE: "\n", tokenize.INDENT: "<indent>", tokenize.DEDENT: "<dedent>"}
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}


def normalized(code: str) -> str:
    """The code's tokens without comments or layout beyond the block structure; code that does
    not tokenize falls back to its words joined by single spaces."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return " ".join(code.split())
    kept = [_LAYOUT.get(t.type, t.string) for t in tokens if t.type not in _SKIPPED]
    return " ".join(kept)


def code_hash(code: str) -> str:
    return hashlib.sha256(normalized(code).encode()).hexdigest()


@dataclass(frozen=True)
class Selection:
    """Which solutions an export takes; the defaults take every trustworthy one."""

    min_score: float | None = None
    sources: frozenset[str] = frozenset()  # empty: every source
    models: frozenset[str] = frozenset()  # empty: every model
    since: float | None = None  # the cycle finished at or after (epoch seconds)
    until: float | None = None  # the cycle finished before
    include_benchmarks: bool = False
    any_verdict_mode: bool = False

    def why_not(self, solution: dict[str, Any], source: str, finished_at: float) -> str:
        """ "" when the solution is taken, else the filter that leaves it out."""
        if self.sources and source not in self.sources:
            return "source"
        if source in BENCHMARK_SOURCES and not self.include_benchmarks and not self.sources:
            return "benchmark"
        if self.models and solution["model"] not in self.models:
            return "model"
        score = _float(solution["review_score"])
        if self.min_score is not None and (score is None or score < self.min_score):
            return "review score"
        if self.since is not None and finished_at < self.since:
            return "time"
        if self.until is not None and finished_at >= self.until:
            return "time"
        return ""

    def described(self) -> list[str]:
        shown = [
            "verdicts: " + ("any mode (includes same-process)" if self.any_verdict_mode else SPLIT)
        ]
        if self.sources:
            shown.append(f"sources: {', '.join(sorted(self.sources))}")
        shown.append("benchmarks: " + ("included" if self._benchmarks_in() else "left out"))
        if self.models:
            shown.append(f"models: {', '.join(sorted(self.models))}")
        if self.min_score is not None:
            shown.append(f"review score >= {self.min_score}")
        if self.since is not None or self.until is not None:
            shown.append(f"finished in [{_iso(self.since)}, {_iso(self.until)})")
        return shown

    def _benchmarks_in(self) -> bool:
        return self.include_benchmarks or bool(self.sources & BENCHMARK_SOURCES)


@dataclass
class Dataset:
    """Every record of each dataset, with the counts the card and the command print."""

    records: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name in DATASETS}
    )
    duplicates: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)  # solutions, by the reason
    attempts: list[dict[str, Any]] = field(default_factory=list)  # of finished cycles
    cycles: list[dict[str, Any]] = field(default_factory=list)
    unfinished_cycles: int = 0

    def solutions(self) -> int:
        return len(self.records["sft"]) + self.duplicates["sft"]


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN is no score


def _true(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "..."
    return pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()


def _fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def _provenance(solution: dict[str, Any], cycle: dict[str, Any], code: str) -> dict[str, Any]:
    source = str(cycle["source"])
    return {
        "cycle_id": str(solution["cycle_id"]),
        "attempt": int(solution["attempt"]),
        "title": str(cycle["title"]),
        "model": str(solution["model"]),
        "verdict_mode": str(solution["verdict_mode"]),
        "status": str(solution["status"]),
        "review_score": _float(solution["review_score"]),
        "source": source,
        "benchmark": source in BENCHMARK_SOURCES,
        "finished_at": float(cycle["finished_at"]),
        "code_sha256": code_hash(code),
    }


def _records(rows: list[dict[str, Any]], solution: dict[str, Any], cycle: dict[str, Any]) -> dict:
    """One cycle's records: its SFT pair, its repair pair (when a fix passed) and a preference
    pair per failed attempt whose code differs from the code that passed."""
    code, task = str(solution["code"]), str(rows[0]["task"])
    meta = _provenance(solution, cycle, code)
    messages = [
        {"role": "system", "content": CODER_SYSTEM},
        {"role": "user", "content": task},
        {"role": "assistant", "content": _fenced(code)},
    ]
    out: dict[str, list[dict[str, Any]]] = {
        "sft": [{"messages": messages, **meta}],
        "sft_flat": [{"prompt": task, "completion": code, **meta}],
        "repair": [],
        "preference": [],
    }
    failed = [r for r in rows if int(r["attempt"]) < meta["attempt"] and str(r["code"]).strip()]
    before = next((r for r in failed if int(r["attempt"]) == meta["attempt"] - 1), None)
    hashes = {int(r["attempt"]): code_hash(str(r["code"])) for r in failed}
    if before is not None:
        out["repair"].append(
            {
                "prompt": str(solution["task"]),  # what the model was asked: code, error, task
                "completion": code,
                "task": task,
                "failing_code": str(before["code"]),
                "error_type": str(before["error_type"]),
                "error": str(before["error"]),
                "failing_attempt": int(before["attempt"]),
                "failing_sha256": hashes[int(before["attempt"])],
                **meta,
            }
        )
    for rejected in failed:
        rejected_sha256 = hashes[int(rejected["attempt"])]
        if rejected_sha256 == meta["code_sha256"]:
            continue  # the same code failed once and passed later (a flaky test): no preference
        out["preference"].append(
            {
                "prompt": task,
                "chosen": code,
                "rejected": str(rejected["code"]),
                "rejected_attempt": int(rejected["attempt"]),
                "rejected_status": str(rejected["status"]),
                "rejected_error": str(rejected["error"]),
                "rejected_sha256": rejected_sha256,
                **meta,
            }
        )
    return out


def _key(name: str, record: dict[str, Any]) -> tuple[str, ...]:
    if name == "repair":
        return (record["failing_sha256"], record["code_sha256"])
    if name == "preference":
        return (record["code_sha256"], record["rejected_sha256"])
    return (record["code_sha256"],)


def _rows(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    return frame.to_dict("records")


def build(attempts: pd.DataFrame, cycles: pd.DataFrame, selection: Selection) -> Dataset:
    """Every dataset's records from the archive's two tables, oldest finished cycle first."""
    dataset = Dataset()
    finished = {str(row["cycle_id"]): row for row in _rows(cycles)}
    by_cycle: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(attempts):
        by_cycle.setdefault(str(row["cycle_id"]), []).append(row)
    dataset.unfinished_cycles = len(set(by_cycle) - set(finished))
    order = sorted(
        (cid for cid in by_cycle if cid in finished),
        key=lambda cid: (float(finished[cid]["finished_at"] or 0), cid),
    )
    seen: dict[str, set[tuple[str, ...]]] = {name: set() for name in DATASETS}
    for cycle_id in order:
        rows = sorted(by_cycle[cycle_id], key=lambda r: int(r["attempt"]))
        cycle = finished[cycle_id]
        dataset.cycles.append(cycle)
        dataset.attempts.extend(rows)
        passed = [r for r in rows if str(r["status"]) == "passed" and _true(r["passed"])]
        if not passed:
            continue
        solution = passed[0]
        if str(solution["verdict_mode"]) != SPLIT and not selection.any_verdict_mode:
            dataset.left_out["not judged in the split mode"] += 1
            continue
        why = selection.why_not(solution, str(cycle["source"]), float(cycle["finished_at"]))
        if why:
            dataset.left_out[why] += 1
            continue
        for name, records in _records(rows, solution, cycle).items():
            for record in records:
                key = _key(name, record)
                if key in seen[name]:
                    dataset.duplicates[name] += 1
                    continue
                seen[name].add(key)
                dataset.records[name].append(record)
    return dataset
