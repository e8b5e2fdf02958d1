"""How the worker and its memory engine process talk: length-prefixed pickles over a pipe.

Pickle, because both ends are this package's own code in processes the worker started (nothing
else writes to the pipe), and it carries a 384-float vector and its payload in microseconds.
A request is (id, operation, arguments); a reply is (id, outcome, value) where outcome is "ok",
"mismatch" (value: the MemoryMismatchError's message) or "error" (value: what failed).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct("!I")


def frame(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any | None:
    """The next message, or None at the end of the pipe."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        (length,) = _LENGTH.unpack(head)
        return pickle.loads(await reader.readexactly(length))
    except asyncio.IncompleteReadError:
        return None
