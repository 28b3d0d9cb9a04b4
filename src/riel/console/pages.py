"""The console's pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from riel.server.app import RielServer


def routes(server: RielServer) -> list[BaseRoute]:
    async def overview(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Riel</title><h1>Riel</h1>")

    return [Route("/", overview)]
