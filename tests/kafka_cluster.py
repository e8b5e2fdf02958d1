"""Apache Kafka for the real-Kafka tier: one fresh cluster per test, through scripts/kafka.sh.

The tier needs Java 17+ and Maven (or the jars already in the cache). `unavailable()` says why it
cannot run, so the suite can say so plainly instead of skipping in silence.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

from aimesh.embedded.processes import port_is_free

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kafka.sh"
VERSION = os.environ.get("KAFKA_VERSION", "4.4.0")


def unavailable() -> str:
    """Why the real-Kafka tier cannot run here, or "" when it can."""
    if not shutil.which("java"):
        return "no java on PATH (Kafka needs Java 17+)"
    shown = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)', shown)
    if not found or int(found.group(1)) < 17:
        return f"Kafka needs Java 17+, found: {shown.splitlines()[0] if shown else 'nothing'}"
    fetched = subprocess.run(["bash", str(SCRIPT), "fetch"], capture_output=True, text=True)
    if fetched.returncode:
        return f"could not fetch Kafka {VERSION}: {fetched.stderr.strip()}"
    return ""


def _free_base_port() -> int:
    """A port P with P..P+2 (clients) and P+101..P+103 (controllers) all free."""
    for _ in range(200):
        base = random.randrange(20000, 40000)
        wanted = [*range(base, base + 3), *range(base + 101, base + 104)]
        if all(port_is_free("127.0.0.1", port) for port in wanted):
            return base
    raise RuntimeError("no free ports for a Kafka cluster")


class KafkaCluster:
    """1 or 3 KRaft brokers on loopback, their logs on disk under `root`."""

    def __init__(self, root: Path, brokers: int = 1) -> None:
        self.root = root
        self.brokers = brokers
        self.port = _free_base_port()
        self.url = ""

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=180
        )
        if done.returncode:
            raise RuntimeError(f"kafka.sh {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> KafkaCluster:
        servers = self._run("start", str(self.root), str(self.brokers), str(self.port))
        self.url = f"kafka://{servers.splitlines()[-1]}"
        return self

    def kill_broker(self, number: int) -> None:
        """SIGKILL one broker: its log stays on disk."""
        self._run("stop-broker", str(self.root), str(number))

    def start_broker(self, number: int) -> None:
        self._run("start-broker", str(self.root), str(number))

    def stop(self) -> None:
        self._run("stop", str(self.root))
