"""Finding an LLM: the configured Ollama, a local Ollama, or the project's embedded server.

Agents always speak Ollama's API; this module only decides who answers it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from aimesh.embedded.processes import free_port, wait_until
from aimesh.llm.client import DEFAULT_HOST


def ollama_answers(host: str, timeout: float = 2.0) -> bool:
    """True when something at `host` answers Ollama's /api/tags."""
    try:
        response = httpx.get(f"{host.rstrip('/')}/api/tags", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def find_ollama(configured: str | None) -> str | None:
    """The configured host if it answers, else Ollama's default address if that answers."""
    for host in filter(None, (configured, DEFAULT_HOST)):
        if ollama_answers(host):
            return host
    return None


def start_embedded_llm(
    log_path: Path, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the embedded server (catalog chat models + e5) on a loopback port; return it once
    /api/tags answers."""
    port = port or free_port()
    host = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "aimesh", "llm", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the embedded LLM server exited; see {log_path}")
        return ollama_answers(host, timeout=1.0)

    if wait_until(answers, 60):
        return process, host
    process.kill()
    raise RuntimeError(f"the embedded LLM server did not answer within 60 s; see {log_path}")
