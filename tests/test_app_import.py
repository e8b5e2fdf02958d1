"""Importing the app opens no connection and writes no file.

A unit test, a script or a tool that imports `aimesh.app` (the agents' modules do) must not probe
the broker or create directories: that waits until Faust first reads its configuration, which a
starting worker does. Checked in a fresh interpreter with an audit hook that records every socket
made and every file or directory written, before `aimesh.app` is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs in the fresh interpreter: what was done, as one JSON list on stdout.
PROBE = """
import json, os, sys
done = []
WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

def hook(event, args):
    if event in ("socket.__new__", "socket.connect", "os.mkdir", "os.rename", "os.remove"):
        done.append(f"{event} {args[:2]!r}")
    elif event == "open" and args[0] not in (None, os.devnull):  # some library opens it
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (flags or 0) & WRITES:
            done.append(f"open for writing {args[0]!r}")

sys.addaudithook(hook)
import {module}
{after}
print(json.dumps(done))
"""


def _done(tmp_path: Path, module: str, after: str = "") -> list[str]:
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "AIMESH_DATA_DIR": str(tmp_path / "d"),
        "AIMESH_BROKER_URL": "kafka://127.0.0.1:9",
        "AIMESH_TABLES_DIR": str(tmp_path / "t"),
    }
    code = PROBE.replace("{module}", module).replace("{after}", after)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_app_opens_no_socket_and_writes_no_file(tmp_path):
    assert _done(tmp_path, "aimesh.app") == []
    assert not (tmp_path / "d").exists()


def test_the_probe_sees_what_reading_the_configuration_does(tmp_path):
    """The check can fail: reading Faust's configuration (as a starting worker does) judges the
    broker over a socket and creates the data dir, and the probe sees both."""
    done = _done(tmp_path, "aimesh.app", after="aimesh.app.app.conf.broker_session_timeout")
    assert any(d.startswith("socket.") for d in done), done
    assert any(d.startswith("os.mkdir") and str(tmp_path / "d") in d for d in done), done
