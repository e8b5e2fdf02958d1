"""How the dashboard holds up with a big archive: 10,000 cycles, in a real headless Chromium.

Writes a synthetic archive (N cycles of 1 to 4 attempts, with code, errors, reviews and recalled
memories, through the project's own CsvArchive), starts the embedded broker and one
`aimesh worker` on it (no LLM: the producer is off and no task arrives), then times
- each JSON view the page uses: the first call (cold: the CSV files are parsed) and the median
  of the next five (warm: parsed once, cached until the files change);
- the page in headless Chromium (Debian's `chromium` and `chromium-driver`): from navigation
  to the first full picture (`body[data-ready]`, set by dashboard.js once counters, charts,
  cycles, telemetry and memory are drawn), on first load (the worker parses the files again,
  as after a change) and on reload; and opening a cycle until its detail is drawn.
Target: interactive in under a second with 10,000 cycles. Timings are printed, not asserted.
Run from the repo root: `python bench/dashboard_bench.py [--cycles N]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from aimesh.archive import ATTEMPT_COLUMNS, CYCLE_COLUMNS, CsvArchive
from aimesh.embedded.broker import start_tansu
from aimesh.embedded.processes import free_port, stop

TARGET_S = 1.0
VIEWS = (
    "/api/summary",
    "/api/cycles?limit=20",
    "/api/series?buckets=30",
    "/api/telemetry?limit=50",
    "/api/memory?limit=5",
    "/api/status",
)
CODE = "def add(a, b):\n    return a {op} b\n"


def synthetic_archive(tables: Path, count: int, seed: int = 7) -> tuple[int, str]:
    """`count` finished cycles over the last hour; returns (attempt rows, a cycle id)."""
    rng = random.Random(seed)
    now = time.time()
    cycles, attempts = [], []
    for n in range(count):
        cycle_id = f"bench-{n:05d}"
        tries = rng.choice((1, 1, 2, 2, 3, 4))
        passed = tries < 4 or rng.random() < 0.3
        start = now - 3600 + n * 3600 / count
        for attempt in range(1, tries + 1):
            ok = passed and attempt == tries
            attempts.append(
                {
                    "cycle_id": cycle_id, "attempt": attempt, "title": f"Task {n}",
                    "task": f"Return the sum of a and b (task {n}).",
                    "code": CODE.format(op="+" if ok else "-"),
                    "status": "passed" if ok else "failed", "passed": ok,
                    "error_type": "" if ok else "AssertionError",
                    "error": "" if ok else "line 5: assert add(1, 2) == 3",
                    "sandbox_ms": round(rng.uniform(3, 30), 1), "review_score": 0.8,
                    "critique": "Clear and correct.", "review_valid": True, "model": "bench",
                    "llm_latency_ms": round(rng.uniform(200, 3000), 1), "prompt_tokens": 120,
                    "completion_tokens": 40, "memories_used": min(attempt - 1, 3),
                    "finished_at": start + attempt * 2,
                    "memories": json.dumps(["a lesson"] * min(attempt - 1, 3)),
                    "review_latency_ms": round(rng.uniform(200, 2000), 1),
                }
            )  # fmt: skip
        cycles.append(
            {
                "cycle_id": cycle_id, "title": f"Task {n}", "source": "bench",
                "outcome": "passed" if passed else "gave_up", "attempts": tries,
                "started_at": start, "finished_at": start + tries * 2, "duration_s": tries * 2,
            }
        )  # fmt: skip
    CsvArchive(tables / "attempts.csv", ATTEMPT_COLUMNS, ("cycle_id", "attempt")).append(attempts)
    CsvArchive(tables / "cycles.csv", CYCLE_COLUMNS, ("cycle_id",)).append(cycles)
    return len(attempts), cycles[count // 2]["cycle_id"]


def start_worker(root: Path, broker_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMESH_")}
    env.update(
        AIMESH_BROKER_URL=broker_url,
        OLLAMA_HOST=f"http://127.0.0.1:{free_port()}",  # nothing listens: no LLM is needed
        AIMESH_DATA_DIR=str(root / "data"),
        AIMESH_TABLES_DIR=str(root / "tables"),
        AIMESH_MAX_TASKS="0",
        AIMESH_WEB_PORT=str(port),
    )
    log = open(root / "worker.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "aimesh", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    web = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{web}/api/telemetry", timeout=5).status_code == 200:  # reads no CSV
                return process, web
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"the worker did not serve {web}; see {root / 'worker.log'}")


def time_views(web: str) -> list[tuple[str, float, float]]:
    rows = []
    with httpx.Client(base_url=web, timeout=30) as client:
        for path in VIEWS:
            started = time.perf_counter()
            client.get(path).raise_for_status()
            cold = time.perf_counter() - started
            warm = []
            for _ in range(5):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                warm.append(time.perf_counter() - started)
            rows.append((path, cold, statistics.median(warm)))
    return rows


def browser() -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("needs Debian's chromium and chromium-driver (apt install them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def ready_ms(driver: webdriver.Chrome) -> float:
    """Milliseconds from navigation start to the dashboard's first full picture."""
    WebDriverWait(driver, 30, poll_frequency=0.05).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    return float(driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def time_page(web: str, cycle_id: str) -> dict[str, float]:
    driver = browser()
    try:
        driver.get(f"{web}/dashboard")
        first = ready_ms(driver)
        reloads = []
        for _ in range(3):
            driver.refresh()
            reloads.append(ready_ms(driver))
        driver.get(f"{web}/dashboard")
        ready_ms(driver)
        # the cycle is on a later page: go straight to it, as a user following a link would
        started = time.perf_counter()
        driver.execute_script(f"showCycle({json.dumps(cycle_id)})")
        WebDriverWait(driver, 30, poll_frequency=0.02).until(
            lambda d: d.find_element(By.ID, "detail").get_attribute("data-cycle-id") == cycle_id
        )
        detail = time.perf_counter() - started
        return {"first": first, "reload": statistics.median(reloads), "detail": detail * 1000}
    finally:
        driver.quit()


def report(count: int, attempts: int, views: list[tuple[str, float, float]], page: Any) -> None:
    print(f"archive: {count} cycles, {attempts} attempts (synthetic), one worker, 2-core machine")
    print(f"{'view':<28}{'cold ms':>10}{'warm ms':>10}")
    for path, cold, warm in views:
        print(f"{path:<28}{cold * 1000:>10.1f}{warm * 1000:>10.1f}")
    print(f"page, first load to interactive: {page['first']:.0f} ms")
    print(f"page, reload to interactive (median of 3): {page['reload']:.0f} ms")
    print(f"a cycle's detail drawn after the call: {page['detail']:.0f} ms")
    verdict = "meets target" if max(page["first"], page["reload"]) / 1000 < TARGET_S else "MISSES"
    print(f"target: interactive in under {TARGET_S:g} s with {count} cycles: {verdict}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000, help="cycles in the archive")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="aimesh-dashboard-bench-"))
    broker = worker = None
    try:
        attempts, cycle_id = synthetic_archive(root / "tables", args.cycles)
        broker, url = start_tansu()
        worker, web = start_worker(root, url)
        views = time_views(web)
        for name in ("cycles.csv", "attempts.csv"):  # the page's first load meets cold files too
            os.utime(root / "tables" / name)
        page = time_page(web, cycle_id)
        report(args.cycles, attempts, views, page)
    finally:
        for process in (worker, broker):
            if process is not None:
                stop(process)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
