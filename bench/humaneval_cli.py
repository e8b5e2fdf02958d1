"""HumanEval's 164 canonical solutions, and the same solutions altered, through `aimesh sandbox`.

What a user would type, once per solution: `aimesh sandbox CODE --test TESTS --preamble PROMPT
--entry-point NAME` (the split mode, as every verdict). Prints how many canonical solutions
passed and how many altered ones did not, each altered solution returning a changed value
(tests/test_humaneval.py's ALTERED). One process per verdict makes this slow (about a second
each), which is why it is a bench script and not a test.

    python bench/humaneval_cli.py [--jobs 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import collections
import json
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from testbed.humaneval_controls import altered, canonical, problems


def verdict(folder: Path, problem: dict, code: str) -> str:
    folder.mkdir(parents=True)
    (folder / "code.py").write_text(code)
    (folder / "tests.py").write_text(problem["test"])
    (folder / "prompt.py").write_text(problem["prompt"])
    command = [
        sys.executable, "-m", "aimesh", "sandbox", str(folder / "code.py"),
        "--test", str(folder / "tests.py"), "--preamble", str(folder / "prompt.py"),
        "--entry-point", problem["entry_point"],
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        return f"no verdict (exit {done.returncode}): {done.stderr[-200:]}"
    return f"{result['status']} ({result['mode']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="CLI processes at once")
    args = parser.parse_args()
    data = problems()
    makers = (("canonical", canonical), ("altered", altered))
    cases = [(p, kind, make(p)) for p in data for kind, make in makers]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work, ThreadPoolExecutor(args.jobs) as pool:
        statuses = list(
            pool.map(
                lambda n_case: verdict(Path(work) / str(n_case[0]), n_case[1][0], n_case[1][2]),
                enumerate(cases),
            )
        )
    wall = time.perf_counter() - started
    for kind in ("canonical", "altered"):
        counts = collections.Counter(s for (_, k, _), s in zip(cases, statuses, strict=True)
                                     if k == kind)  # fmt: skip
        print(f"{kind:>9}: {dict(counts)}")
    print(f"{len(cases)} verdicts through `aimesh sandbox` in {wall:.0f} s ({args.jobs} at once)")


if __name__ == "__main__":
    main()
