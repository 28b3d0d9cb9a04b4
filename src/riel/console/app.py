"""Assembles the ASGI app that ``riel serve`` runs on its HTTP listener."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from riel.console import metrics, pages
from riel.server.app import RielServer


def build_app(server: RielServer) -> Starlette:
    routes: list[BaseRoute] = [*metrics.routes(server)]
    if server.config.console_enabled:
        routes += pages.routes(server)
    return Starlette(routes=routes)
