"""A changelog read to its end that recovery never received is read again
(aimesh.stream.recovery_watch), and only then: a partition still being fetched, or already
applied, is left alone."""

from __future__ import annotations

from faust.types import TP

from aimesh.stream.recovery_watch import STALL_S, RecoveryWatch, stalled_reads

JOIN, BUDGET, DONE = TP("join-changelog", 1), TP("budget-changelog", 3), TP("done-changelog", 0)


def test_a_changelog_read_to_its_end_but_not_applied_is_stalled():
    remaining = {JOIN: 13, BUDGET: 4, DONE: 0}
    applied = {JOIN: None, BUDGET: 6, DONE: 9}
    position = {JOIN: 13, BUDGET: 9, DONE: 10}  # BUDGET: still being fetched
    highwater = {JOIN: 13, BUDGET: 11, DONE: 10}
    assert stalled_reads(remaining, applied, position, highwater) == {JOIN: 0}
    position[BUDGET] = 11
    assert stalled_reads(remaining, applied, position, highwater) == {JOIN: 0, BUDGET: 7}


def test_a_partition_without_a_position_is_not_stalled():
    assert stalled_reads({JOIN: 5}, {JOIN: -1}, {JOIN: None}, {JOIN: 5}) == {}


def test_the_seek_comes_once_a_partition_has_looked_stalled_long_enough():
    watch = RecoveryWatch()
    assert watch.due({JOIN: 0}, now=100.0) == {}
    assert watch.due({JOIN: 0}, now=100.0 + STALL_S - 1) == {}
    assert watch.due({}, now=100.0 + STALL_S) == {}  # it moved meanwhile: the clock restarts
    assert watch.due({JOIN: 0}, now=200.0) == {}
    assert watch.due({JOIN: 0}, now=200.0 + STALL_S) == {JOIN: 0}
    assert watch.due({JOIN: 0}, now=200.0 + STALL_S + 1) == {}  # sought: wait again
