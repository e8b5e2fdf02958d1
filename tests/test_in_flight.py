"""The Producer's window of open cycles: full means wait, a finished cycle makes room."""

from __future__ import annotations

from aimesh.agents._in_flight import InFlightWindow


def test_the_window_fills_and_finished_cycles_make_room() -> None:
    finished: list[str] = []
    asked = []

    def done() -> list[str]:
        asked.append(1)
        return finished

    window = InFlightWindow(2, done, give_up_after_s=600)
    assert window.has_room()
    window.started("a")
    assert window.has_room()
    window.started("b")
    assert not window.has_room()
    finished.append("b")
    assert window.has_room() and set(window.open) == {"a"}
    window.started("c")
    assert not window.has_room()
    assert len(asked) == 3, "the archive is read only while the window is full"


def test_no_limit_never_waits() -> None:
    window = InFlightWindow(0, lambda: [], give_up_after_s=600)
    for number in range(100):
        window.started(str(number))
    assert window.has_room()


def test_a_cycle_that_never_finishes_stops_counting_after_a_while() -> None:
    now = [0.0]
    window = InFlightWindow(1, lambda: [], give_up_after_s=100, clock=lambda: now[0])
    window.started("lost")
    now[0] = 99.0
    assert not window.has_room() and window.expired == []
    now[0] = 101.0
    assert window.has_room() and window.expired == ["lost"]
