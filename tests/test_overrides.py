"""Every Faust, aiokafka or mode method the project replaces still exists upstream.

The transport fixes (aimesh/stream/transport/), the app, its web server, the dead-lettering topic
and the durable table work by overriding methods of faust-streaming's classes. Should an upgrade
rename one, the override would become a method nobody calls and its fix would stop silently.
Each override is marked `@override` (PEP 698); here every marked method must exist on the
upstream class it is placed in front of, and no unmarked method may shadow an upstream one
unknowingly.
"""

from __future__ import annotations

import inspect

import pytest
from faust.transport.drivers import aiokafka as driver
from typing_extensions import override

from aimesh.app import MeshApp
from aimesh.stream import transport
from aimesh.stream.deadletter import DeadLetteringTopic
from aimesh.stream.durable_table import DurableTable
from aimesh.web.server import Web

CLASSES = [transport.Consumer, transport.ConsumerThread, transport.Producer, transport.Transport,
           DeadLetteringTopic, DurableTable, MeshApp, Web]  # fmt: skip


def _ours(cls: type) -> list[type]:
    return [k for k in cls.__mro__ if k.__module__.startswith("aimesh.")]


def _upstream(cls: type) -> type:
    """The first class in `cls`'s MRO that this project did not write."""
    return next(k for k in cls.__mro__ if not k.__module__.startswith("aimesh."))


def _function(member: object) -> object | None:
    """The function behind a method, static or class method, or property; None otherwise."""
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    return member if inspect.isfunction(member) else None


def problems(cls: type) -> list[str]:
    """What breaks the rule in `cls`: marked overrides missing upstream, unmarked shadows."""
    base, found = _upstream(cls), []
    for ours in _ours(cls):
        for name, member in vars(ours).items():
            function = _function(member)
            if function is None or (name.startswith("__") and name.endswith("__")):
                continue
            marked = getattr(function, "__override__", False)
            if marked and not hasattr(base, name):
                found.append(f"{ours.__name__}.{name} overrides nothing on {base.__qualname__}")
            if not marked and hasattr(base, name):
                found.append(f"{ours.__name__}.{name} replaces {base.__qualname__}.{name} unmarked")
    return found


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_override_exists_on_the_class_it_overrides(cls):
    assert problems(cls) == []


class _RenamedUpstream:
    """A mixin written against a faust-streaming that had `perform_seek_v0` and `ack`."""

    __module__ = "aimesh.x"

    @override
    def perform_seek_v0(self) -> None: ...

    def ack(self, message: object) -> bool:  # an override nobody marked
        return True


def test_a_renamed_upstream_method_or_an_unmarked_override_is_caught():
    broken = type("Broken", (_RenamedUpstream, driver.Consumer), {"__module__": "aimesh.x"})
    assert problems(broken) == [
        "_RenamedUpstream.perform_seek_v0 overrides nothing on Consumer",
        "_RenamedUpstream.ack replaces Consumer.ack unmarked",
    ]
