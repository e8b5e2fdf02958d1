"""HumanEval through the whole mesh on the embedded default: what fixes and memory add.

Each run is a real `aimesh up --tasks FILE --max-cycles N` (embedded broker, embedded LLM
server, one worker) on a seeded subset of the 164 problems, in a fresh data dir, so memory starts
empty and whatever it holds was learned within the run. The same subset runs twice, memory on
(AIMESH_MEMORY_K=3) and off (0), and the figures are printed side by side:

- first-try pass@1: passed first attempts over judged first attempts (the published protocol:
  the prompt is the preamble, the tests are hidden; sampling at temperature 0.2). With memory
  on, a first attempt's prompt also carries what earlier cycles of the run taught: that column
  is the loop's figure, the memory-off column the model's own;
- pass after fixes: cycles passed over cycles, with fixes from the sandbox's error;
- the model's published pass@1; wall time; the LLM's decode speed from the server's log.

A subset's figure is a sample: each is printed with its 95% Wilson interval, which for n = 20
spans about +-20 points, for n = 164 about +-7.5. Reviews are off by default (`--review`): on a
CPU each review costs as much model time as the code it reviews, and they do not change a verdict.

    python bench/learning_loop.py [--n 20] [--seed 1] [--max-fixes 3] [--model M] [--fix-model M]
                                  [--memory both|on|off] [--review off|passed|all]

`--n 164 --max-fixes 0 --memory off` measures first tries on every problem (about half an hour).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import math
import os
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass

from aimesh.archive import CycleArchive
from aimesh.archive.learning import learning
from aimesh.cli import with_embedded_fix_model
from aimesh.embedded.processes import free_port
from aimesh.llm.catalog import DEFAULT_CHAT_MODEL, lookup
from aimesh.llm.model_store import model_file
from aimesh.settings import Settings
from testbed.humaneval_controls import problems as humaneval_problems

ROOT = Path(__file__).resolve().parents[1]
_GENERATION = re.compile(r": (\d+) prompt tokens in ([\d.]+) s, (\d+) tokens in ([\d.]+) s")


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% interval of a pass rate measured on `total` problems."""
    if not total:
        return (0.0, 1.0)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def subset(n: int, seed: int) -> list[dict]:
    problems = humaneval_problems()
    if n >= len(problems):
        return problems
    picked = sorted(random.Random(seed).sample(range(len(problems)), n))
    return [problems[i] for i in picked]


@dataclass
class Run:
    label: str
    first: tuple[int, int]
    after: tuple[int, int]
    wall_s: float
    tokens: int
    decode_s: float
    fixes: dict[str, dict[str, int]]
    first_failures: dict[str, int]  # error type -> failed first attempts

    def line(self, what: str) -> str:
        hits, total = self.first if what == "first" else self.after
        low, high = wilson(hits, total)
        rate = 100 * hits / total if total else float("nan")
        return f"{rate:5.1f} ({hits}/{total}, 95% {100 * low:.0f}-{100 * high:.0f})"


def decode_speed(log: Path) -> tuple[int, float]:
    tokens, seconds = 0, 0.0
    if log.exists():
        for match in _GENERATION.finditer(log.read_text(errors="replace")):
            tokens += int(match.group(3))
            seconds += float(match.group(4))
    return tokens, seconds


def run_mesh(
    label: str, tasks: Path, n: int, env_extra: dict[str, str], work: Path, timeout_s: float
) -> Run:
    data, tables = work / label / "data", work / label / "tables"
    data.mkdir(parents=True)
    shared_models = Settings.from_env().models_dir.resolve()
    (data / "models").symlink_to(shared_models, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMESH_", "OLLAMA_"))}
    env.update(
        AIMESH_DATA_DIR=str(data),
        AIMESH_TABLES_DIR=str(tables),
        AIMESH_WEB_PORT=str(free_port()),
        AIMESH_TASK_INTERVAL="0.2",
        OLLAMA_HOST="http://127.0.0.1:9",  # never an Ollama of this machine: the embedded server
        **env_extra,
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "aimesh", "up", "--tasks", str(tasks), "--max-cycles", str(n)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{label}: aimesh up exited {done.returncode}\n{done.stdout[-3000:]}")
    archive = CycleArchive(tables)
    attempts = archive.attempts.read()
    figures = learning(attempts, archive.cycles.read(), int(env_extra["AIMESH_MAX_FIXES"]))
    firsts = attempts[(attempts["attempt"].astype(int) == 1) & (attempts["status"] != "passed")]
    first_failures = {str(k): int(v) for k, v in firsts["error_type"].value_counts().items()}
    first = figures["first_try"]
    last = figures["pass_after_fixes"][-1]
    tokens, seconds = decode_speed(data / "logs" / "llm.log")
    return Run(
        label,
        (first["passed"], first["judged"]),
        (last["passed"], last["decided"]),
        wall,
        tokens,
        seconds,
        figures["fixes_by_error"],
        first_failures,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="problems, a seeded subset (164: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-fixes", type=int, default=3)
    parser.add_argument("--model", default=DEFAULT_CHAT_MODEL)
    parser.add_argument(
        "--fix-model", default=None, help="default: as `aimesh up` chooses on the embedded server"
    )
    parser.add_argument("--memory", choices=("both", "on", "off"), default="both")
    parser.add_argument("--review", choices=("off", "passed", "all"), default="off")
    parser.add_argument("--timeout-min", type=float, default=180, help="per run")
    args = parser.parse_args()
    if args.fix_model is None:  # the model `aimesh up` chooses on the embedded server
        chosen = with_embedded_fix_model({"AIMESH_CHAT_MODEL": args.model})
        args.fix_model = chosen.get("AIMESH_FIX_MODEL", "")
    if args.n < 1 or args.max_fixes < 0:
        parser.error("--n must be at least 1 and --max-fixes at least 0")
    for name in filter(None, (args.model, args.fix_model)):
        model_file(lookup(name), Settings.from_env().models_dir)  # join once, before timing
    problems = subset(args.n, args.seed)
    memories = {"both": ("on", "off"), "on": ("on",), "off": ("off",)}[args.memory]
    runs = []
    with tempfile.TemporaryDirectory(prefix="aimesh-learning-") as tmp:
        work = Path(tmp)
        tasks = work / "tasks.jsonl"
        tasks.write_text("".join(json.dumps(p) + "\n" for p in problems))
        for memory in memories:
            extra = {
                "AIMESH_CHAT_MODEL": args.model,
                "AIMESH_FIX_MODEL": args.fix_model,
                "AIMESH_MAX_FIXES": str(args.max_fixes),
                "AIMESH_MEMORY_K": "3" if memory == "on" else "0",
                "AIMESH_REVIEW": args.review,
            }
            print(f"running memory {memory}: {len(problems)} problems ...", flush=True)
            runs.append(
                run_mesh(
                    f"memory-{memory}", tasks, len(problems), extra, work, args.timeout_min * 60
                )
            )
    published = lookup(args.model).published_humaneval
    print(
        f"\nHumanEval, {len(problems)} problems (seed {args.seed}), model {args.model}"
        + (f", fixes by {args.fix_model}" if args.fix_model else "")
        + f", max fixes {args.max_fixes}, reviews {args.review}"
    )
    print(f"{'':24}" + "".join(f"{run.label:>32}" for run in runs))
    print(f"{'first-try pass@1 %':24}" + "".join(f"{run.line('first'):>32}" for run in runs))
    print(f"{'pass after fixes %':24}" + "".join(f"{run.line('after'):>32}" for run in runs))
    print(f"{'published pass@1 %':24}" + "".join(f"{published or '-':>32}" for run in runs))
    print(f"{'wall time (min)':24}" + "".join(f"{run.wall_s / 60:>32.1f}" for run in runs))
    speed = [f"{r.tokens / r.decode_s:.1f}" if r.decode_s else "-" for r in runs]
    print(f"{'LLM decode tokens/s':24}" + "".join(f"{s:>32}" for s in speed))
    hourly = [f"{r.after[1] / (r.wall_s / 3600):.0f}" for r in runs]
    print(f"{'cycles per hour':24}" + "".join(f"{h:>32}" for h in hourly))
    for run in runs:
        print(f"failed first tries by error, {run.label}: {json.dumps(run.first_failures)}")
        print(f"fixes by error, {run.label}: {json.dumps(run.fixes)}")


if __name__ == "__main__":
    main()
