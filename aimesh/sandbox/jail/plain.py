"""Plain data across the boundary between a program and its tests, and nothing else.

Only values of these exact builtin types cross: None, bool, int, float, complex, str, bytes,
and lists, tuples, dicts, sets and frozensets of them. A subclass (an `int` whose `__eq__`
lies), an object with its own `__eq__`, a generator: each is refused with its type named, so an
answer that would only *look* right to `==` never reaches a test. The receiving side builds
fresh builtin objects from JSON, so whatever the sender is, it cannot hand over behaviour.

Frames on the channel: 4-byte big-endian length, then UTF-8 JSON. Standard library only: this
runs inside the jail.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

MAX_FRAME = 64 * 1024 * 1024
MAX_DEPTH = 200
_LENGTH = struct.Struct(">I")


class NotPlain(TypeError):
    """A value that is not plain data; `type_name` names what it was."""

    def __init__(self, type_name: str, where: str = "") -> None:
        self.type_name = type_name
        super().__init__(f"{type_name}{where}")


class ChannelClosed(EOFError):
    """The other side is gone (exited, or closed its end) before a whole frame arrived."""


class ChannelError(ValueError):
    """A frame that is not what the protocol says: too big, not JSON, not plain data."""


def to_wire(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-ready tags; NotPlain for anything not of an exact builtin type."""
    if depth > MAX_DEPTH:
        raise NotPlain("data nested deeper than 200 levels")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return {"i": str(value)}  # JSON numbers lose precision beyond 2**53
    if kind is float:
        return {"f": repr(value)}  # nan, inf and -0.0 too
    if kind is complex:
        return {"c": [repr(value.real), repr(value.imag)]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is list:
        return [to_wire(item, depth + 1) for item in value]
    if kind is tuple:
        return {"t": [to_wire(item, depth + 1) for item in value]}
    if kind is dict:
        return {"d": [[to_wire(k, depth + 1), to_wire(v, depth + 1)] for k, v in value.items()]}
    if kind is set:
        return {"s": [to_wire(item, depth + 1) for item in value]}
    if kind is frozenset:
        return {"fs": [to_wire(item, depth + 1) for item in value]}
    raise NotPlain(_type_name(value))


def from_wire(tagged: Any) -> Any:
    """Fresh builtin objects from `to_wire`'s tags; ChannelError for anything else."""
    try:
        return _build(tagged)
    except ChannelError:
        raise
    except Exception as exc:  # unhashable keys, bad numbers, too deep...
        raise ChannelError(f"malformed plain data: {type(exc).__name__}: {exc}"[:300]) from None


def _build(tagged: Any) -> Any:
    if tagged is None or type(tagged) in (bool, str):
        return tagged
    if type(tagged) is list:
        return [_build(item) for item in tagged]
    if type(tagged) is not dict or len(tagged) != 1:
        raise ChannelError(f"not a plain-data tag: {type(tagged).__name__}")
    ((tag, body),) = tagged.items()
    if tag == "i":
        return int(_text(body))
    if tag == "f":
        return float(_text(body))
    if tag == "c":
        real, imag = _items(body, 2)
        return complex(float(_text(real)), float(_text(imag)))
    if tag == "b":
        return bytes.fromhex(_text(body))
    if tag == "t":
        return tuple(_build(item) for item in _items(body))
    if tag == "d":
        pairs = [_items(pair, 2) for pair in _items(body)]
        return {_build(key): _build(value) for key, value in pairs}
    if tag == "s":
        return {_build(item) for item in _items(body)}
    if tag == "fs":
        return frozenset(_build(item) for item in _items(body))
    raise ChannelError(f"unknown plain-data tag {tag!r}")


def _text(body: Any) -> str:
    if type(body) is not str:
        raise ChannelError("a number or bytes tag without its text")
    return body


def _items(body: Any, count: int | None = None) -> list[Any]:
    if type(body) is not list or (count is not None and len(body) != count):
        raise ChannelError("a container tag without its items")
    return body


def _type_name(value: object) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", "?")
    return name if module in ("builtins", "__program__", "") else f"{module}.{name}"


def send(fd: int, message: dict[str, Any]) -> None:
    """Write one frame (the message must already be JSON-ready)."""
    data = json.dumps(message, allow_nan=False).encode()  # ASCII: lone surrogates survive
    if len(data) > MAX_FRAME:
        raise ChannelError(f"a message of {len(data)} bytes is over the {MAX_FRAME}-byte cap")
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def receive(fd: int) -> dict[str, Any]:
    """Read one frame; ChannelClosed at EOF, ChannelError for a frame that breaks the protocol."""
    (length,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    if length > MAX_FRAME:
        raise ChannelError(f"a message of {length} bytes is over the {MAX_FRAME}-byte cap")
    try:
        message = json.loads(_read_exactly(fd, length))
    except (ValueError, RecursionError) as exc:
        raise ChannelError(f"a message that is not JSON: {exc}"[:300]) from None
    if type(message) is not dict:
        raise ChannelError("a message that is not a JSON object")
    return message


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except OSError as exc:  # e.g. ECONNRESET: the other side died
            raise ChannelClosed(str(exc)) from None
        if not chunk:
            raise ChannelClosed("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
