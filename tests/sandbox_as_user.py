"""Runs sandbox programs as whichever user starts it, for the unprivileged attack suite.

One JSON request per stdin line (`program`, `limits`, `mode`), one JSON line back per request:
the program's RunResult (in the split mode, the program is the program's side, with no tests)
and that of a normal program run right after it. Needs only the standard
library and `aimesh.sandbox`, so any Python 3.11+ the user can run will do.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aimesh.sandbox import Limits, run_program, run_tests


async def main() -> None:
    for line in sys.stdin:  # one request at a time, as the tests send them
        request = json.loads(line)
        limits = Limits(**request["limits"])
        if request["mode"] == "split":
            result = await run_tests(request["program"], "", limits=limits)
        else:
            result = await run_program(request["program"], limits)
        health = await run_program(request["health"], Limits(**request["limits"]))
        print(json.dumps({"result": result.to_dict(), "health": health.to_dict()}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
