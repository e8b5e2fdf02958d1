"""JSON views and the dashboard on the Faust worker's web server (127.0.0.1 by default).

Every list is paged or capped, and a bad query parameter is a 400 that says what is allowed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from faust import web

from aimesh import services
from aimesh.app import app, settings
from aimesh.cycle.records import TELEMETRY_TYPES
from aimesh.settings import bootstrap_servers
from aimesh.topics import TELEMETRY
from aimesh.web.cycles import cycle_detail, cycles_page, latest_retrievals
from aimesh.web.dataset import exportable, sft_jsonl
from aimesh.web.series import time_series
from aimesh.web.status import memory_state, parts
from aimesh.web.summary import summarize
from aimesh.web.telemetry_tail import TelemetryTail

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
# The dashboard's own files, by name: nothing else under web/ is served.
STATIC = {
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
    "charts.js": "application/javascript",
}
MAX_LIMIT = 1000
_started = time.time()
telemetry_tail = TelemetryTail(MAX_LIMIT)


class BadRequest(ValueError):
    """A query parameter is unusable; answered with HTTP 400 and the reason."""


def _whole(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    raw = request.query.get(name) or None
    if raw is not None and raw not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


@app.task
async def follow_telemetry() -> None:
    """Keep the mesh's latest telemetry in memory for the views (aimesh/web/telemetry_tail.py)."""
    servers = [f"{host}:{port}" for host, port in bootstrap_servers(settings.broker)]
    await telemetry_tail.follow(servers, TELEMETRY, client_id=f"{app.conf.id}-telemetry-tail")


class JsonView(web.View):
    """A GET view whose `answer` may raise BadRequest (400) or return None (404)."""

    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    async def get(self, request: web.Request, **params: Any) -> web.Response:
        try:
            body = await self.answer(request, **params)
        except BadRequest as exc:
            return self.json({"error": str(exc)}, status=400)
        if body is None:
            return self.json({"error": f"not found: {request.path}"}, status=404)
        return self.json(body)


@app.page("/api/status")
class Status(JsonView):
    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any]:
        return {
            "app": app.conf.id,
            "uptime_s": round(time.time() - _started, 1),
            "parts": await parts(),
            "agents": {name: not agent.should_stop for name, agent in app.agents.items()},
        }


def _archived() -> tuple[Any, Any]:
    """The archive's cycles and attempts as they stand (the Persistence agent writes them)."""
    archive = services.archive()
    return archive.cycles.read(), archive.attempts.read()


@app.page("/api/summary")
class Summary(JsonView):
    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any]:
        return summarize(*_archived(), settings.max_fixes)


@app.page("/api/dataset")
class DatasetCounts(JsonView):
    """What `aimesh export` would write now with its defaults: records per dataset, duplicates
    dropped, and the passing cycles it leaves out, by reason."""

    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any]:
        return exportable(*_archived())


@app.page("/api/dataset/sft.jsonl")
class SftDownload(web.View):
    """The SFT export as `aimesh export` writes it with its defaults, as a download."""

    async def get(self, request: web.Request) -> web.Response:
        return self.bytes(
            sft_jsonl(*_archived()),
            content_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="sft.jsonl"'},
        )


@app.page("/api/cycles")
class Cycles(JsonView):
    """`?limit=N&before=P`: the page of cycles that finished before archive position P."""

    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any]:
        limit = _whole(request, "limit", 20, 1, MAX_LIMIT)
        before = _whole(request, "before", None, 0, 10**9)
        assert limit is not None
        return cycles_page(*_archived(), limit, before)


@app.page("/api/cycles/{cycle_id}")
class CycleDetail(JsonView):
    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any] | None:
        cycle_id = str(params.get("cycle_id", ""))
        return cycle_detail(*_archived(), cycle_id)


@app.page("/api/series")
class Series(JsonView):
    """`?buckets=N`: throughput, latency per agent and pass rate over time; retries."""

    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any]:
        buckets = _whole(request, "buckets", 30, 1, 200)
        assert buckets is not None
        return time_series(*_archived(), time.time(), buckets)


@app.page("/api/telemetry")
class TelemetryView(JsonView):
    """`?limit=N&agent=A&type=T`: the newest events of the mesh, filtered."""

    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any]:
        limit = _whole(request, "limit", 100, 1, MAX_LIMIT)
        recent_telemetry = telemetry_tail.records()
        agents = tuple(sorted({*app.agents, *(e["agent"] for e in recent_telemetry)}))
        agent = _choice(request, "agent", agents)
        kind = _choice(request, "type", TELEMETRY_TYPES)
        events = [
            event
            for event in reversed(recent_telemetry)
            if agent in (None, event["agent"]) and kind in (None, event["type"])
        ]
        return {"events": events[:limit], "agents": list(agents), "types": list(TELEMETRY_TYPES)}


@app.page("/api/memory")
class Memory(JsonView):
    """Failures and lessons stored, and `?limit=N` latest retrievals into prompts."""

    async def answer(self, request: web.Request, **params: Any) -> dict[str, Any]:
        limit = _whole(request, "limit", 10, 1, MAX_LIMIT)
        assert limit is not None
        state = await memory_state()
        state["retrievals"] = latest_retrievals(services.archive().attempts.read(), limit)
        return state


@app.page("/dashboard")
class Dashboard(web.View):
    async def get(self, request: web.Request) -> web.Response:
        page = WEB_DIR / "index.html"
        if not page.is_file():
            return self.text(f"dashboard page not found at {page}", status=404)
        return self.html(page.read_text(encoding="utf-8"))


@app.page("/")
class Home(Dashboard):
    """The worker's address opens the dashboard (aimesh.web.server leaves `/` free for it)."""


@app.page("/health")
class Health(web.View):
    """For load balancers and scripts: 200 and `{"status": "OK"}` while the web server runs
    (what Faust itself answers at `/`)."""

    async def get(self, request: web.Request) -> web.Response:
        return self.json({"status": "OK"})


@app.page("/web/{name}")
class StaticFile(web.View):
    async def get(self, request: web.Request, name: str) -> web.Response:
        path = WEB_DIR / name
        if name not in STATIC or not path.is_file():
            return self.text(f"no such file: {name}", status=404)
        return self.bytes(path.read_bytes(), content_type=STATIC[name])
