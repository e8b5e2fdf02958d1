"""JSON views and the dashboard page on the Faust worker's web server (127.0.0.1 by default)."""

from __future__ import annotations

import collections
import dataclasses
import time
from pathlib import Path
from typing import Any

from faust import StreamT, web

from aimesh import services
from aimesh.agents.persistence import archive
from aimesh.app import app, settings
from aimesh.llm.client import DEFAULT_HOST
from aimesh.records import Telemetry
from aimesh.sandbox import SandboxUnavailable, active_layers
from aimesh.topics import telemetry_topic
from aimesh.web.summary import latest_cycles, summarize

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
MAX_LIMIT = 1000
_started = time.time()
recent_telemetry: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_LIMIT)


class BadRequest(ValueError):
    """A query parameter is unusable; answered with HTTP 400 and the reason."""


def _limit(request: web.Request, default: int) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw!r}")
    return int(raw)


def parts() -> dict[str, Any]:
    """Which parts are embedded or external (`aimesh up` tells its worker: AIMESH_EMBEDDED)."""
    embedded = settings.embedded
    return {
        "broker": {"url": str(app.conf.broker[0]) if app.conf.broker else "",
                   "embedded": "broker" in embedded},
        "llm": {"host": settings.ollama_host or DEFAULT_HOST,
                "embedded": "llm" in embedded,
                "chat_model": settings.chat_model, "embed_model": settings.embed_model},
        "memory": {"url": settings.qdrant_url or str(settings.memory_path),
                   "embedded": settings.qdrant_url is None},
    }  # fmt: skip


async def sandbox_state() -> dict[str, Any]:
    """The layers every run gets (starting a fork server the first time), and the limits."""
    state: dict[str, Any] = {"limits": dataclasses.asdict(settings.sandbox_limits)}
    try:
        services.sandbox_pool()
        state.update(layers=await active_layers(), error="")
    except SandboxUnavailable as exc:
        state.update(layers=[], error=str(exc))
    return state


@app.agent(telemetry_topic, name="telemetry_feed")
async def telemetry_feed(stream: StreamT[Telemetry]) -> None:
    """Keep the latest telemetry of this worker's partitions in memory for the views."""
    async for record in stream:
        recent_telemetry.append(record.asdict())


async def memory_state() -> dict[str, Any]:
    """Counts of stored failures and lessons, or the error that keeps memory from working."""
    try:
        return {"counts": await services.memory().count(), "error": ""}
    except Exception as exc:  # the status page reports, it does not fail
        return {"counts": {}, "error": f"{type(exc).__name__}: {exc}"}


@app.page("/api/status")
class Status(web.View):
    async def get(self, request: web.Request) -> web.Response:
        state = parts()
        state["memory"].update(await memory_state())
        state["sandbox"] = await sandbox_state()
        return self.json(
            {
                "app": app.conf.id,
                "uptime_s": round(time.time() - _started, 1),
                "parts": state,
                "agents": {name: not agent.should_stop for name, agent in app.agents.items()},
            }
        )


@app.page("/api/summary")
class Summary(web.View):
    async def get(self, request: web.Request) -> web.Response:
        return self.json(summarize(archive.cycles.read(), archive.attempts.read()))


class LimitedView(web.View):
    """A list view with `?limit=N`; a bad limit is a 400 that says what is allowed."""

    default_limit = 20

    def latest(self, limit: int) -> dict[str, Any]:
        raise NotImplementedError

    async def get(self, request: web.Request) -> web.Response:
        try:
            limit = _limit(request, self.default_limit)
        except BadRequest as exc:
            return self.json({"error": str(exc)}, status=400)
        return self.json(self.latest(limit))


@app.page("/api/cycles")
class Cycles(LimitedView):
    def latest(self, limit: int) -> dict[str, Any]:
        return {"cycles": latest_cycles(archive.cycles.read(), archive.attempts.read(), limit)}


@app.page("/api/telemetry")
class TelemetryView(LimitedView):
    default_limit = 100

    def latest(self, limit: int) -> dict[str, Any]:
        return {"events": list(recent_telemetry)[-limit:][::-1]}


@app.page("/dashboard")
class Dashboard(web.View):
    async def get(self, request: web.Request) -> web.Response:
        page = WEB_DIR / "index.html"
        if not page.is_file():
            return self.text(f"dashboard page not found at {page}", status=404)
        return self.html(page.read_text(encoding="utf-8"))
