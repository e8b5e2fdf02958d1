"""Threads for the model: the cores the neighbours leave, and one model computation at a time."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from aimesh.llm.core_share import SAMPLE_SECONDS, CoreShare
from aimesh.llm.cpu_turns import Turns


class Machine:
    """Tick counters a test moves by hand: 100 ticks per core per second."""

    def __init__(self) -> None:
        self.total = self.idle = self.own = 0
        self.now = 0.0

    def run(self, seconds: float, *, cores: int, own: float, others: float) -> None:
        ticks = int(seconds * 100)
        self.now += seconds
        self.total += ticks * cores
        self.own += int(ticks * own)
        self.idle += int(ticks * (cores - own - others))

    def share(self, cores: int = 2, **kwargs: object) -> CoreShare:
        return CoreShare(
            cores,
            machine=lambda: (self.total, self.idle),
            own=lambda: self.own,
            clock=lambda: self.now,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(("others", "threads"), [(0.0, 2), (0.3, 2), (0.7, 1), (1.0, 1), (2.0, 1)])
def test_a_busy_neighbour_takes_its_cores_from_the_model(others: float, threads: int) -> None:
    machine = Machine()
    share = machine.share()
    machine.run(1.0, cores=2, own=min(1.0, 2 - others), others=others)
    assert share.threads() == threads


def test_the_model_gets_its_cores_back_when_the_neighbour_stops() -> None:
    machine = Machine()
    share = machine.share(cores=4)
    machine.run(1.0, cores=4, own=1.0, others=3.0)
    assert share.threads() == 1
    machine.run(0.1, cores=4, own=4.0, others=0.0)
    assert share.threads() == 1, "re-measured only every SAMPLE_SECONDS"
    machine.run(SAMPLE_SECONDS, cores=4, own=4.0, others=0.0)
    assert share.threads() == 4


def test_a_fixed_count_is_kept_whatever_the_load() -> None:
    machine = Machine()
    share = machine.share(fixed=2)
    machine.run(1.0, cores=2, own=0.0, others=2.0)
    assert share.threads() == 2


def test_without_proc_every_core_is_used() -> None:
    def missing() -> tuple[int, int]:
        raise FileNotFoundError("/proc/stat")

    share = CoreShare(3, machine=missing)
    assert share.threads() == 3


def test_the_real_proc_readings_see_a_busy_process() -> None:
    share = CoreShare(2)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(SAMPLE_SECONDS + 0.6)
        assert share.threads() == 1
    finally:
        burner.kill()
        burner.wait()


def test_turns_are_served_in_the_order_they_were_asked_for() -> None:
    turns = Turns()
    order: list[int] = []
    first_in = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with turns.turn():
            first_in.set()
            release.wait(5)
            order.append(0)

    def waiter(n: int) -> None:
        with turns.turn():
            order.append(n)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    first_in.wait(5)
    for n in (1, 2, 3):
        thread = threading.Thread(target=waiter, args=(n,))
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # each asks after the one before
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3]


def test_a_bad_server_flag_names_itself_and_exits_2() -> None:
    for flag in ("--parallel", "--threads", "--n-ctx"):
        done = subprocess.run(
            [sys.executable, "-m", "aimesh.llm.server", flag, "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert f"{flag} must be at least 1, got 0" in done.stderr
