"""The worker's web server: Faust's aiohttp driver without Faust's index at `/`.

Faust answers `/` with `{"status": "OK"}` (its "production index"). A person who opens the
worker's address expects the dashboard, so `aimesh.web.views` serves the page at `/` and the
JSON health check at `/health`; this driver leaves the index out so the two never compete for
`/`. Faust's `/router` and `/table` views stay as they are.
"""

from __future__ import annotations

from typing import Any, ClassVar

from faust.web.drivers.aiohttp import Web as AiohttpWeb


class Web(AiohttpWeb):
    production_blueprints: ClassVar[Any] = ()
