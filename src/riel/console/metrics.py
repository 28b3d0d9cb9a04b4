"""``/metrics`` (Prometheus text format) and ``/health``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from riel.server.app import RielServer


def routes(server: RielServer) -> list[BaseRoute]:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return [Route("/health", health)]
