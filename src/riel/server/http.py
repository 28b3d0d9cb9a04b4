"""The HTTP listener of ``riel serve`` (web console, ``/metrics``, ``/health``), on the broker's loop.

Any ASGI application is served by uvicorn on the same asyncio event loop as the Kafka listener, so
pages read the broker's state directly, with no locks and no second process. We bind the socket
ourselves (a busy port is an ``OSError`` the caller reports, not uvicorn's ``sys.exit``) and drive
uvicorn's ``startup``/``main_loop``/``shutdown`` instead of ``serve``, which would take over the
process's signal handlers that ``riel serve`` owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, app: Any, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,  # keep riel's logging setup
            access_log=False,
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(self._config)
        self._socket: socket.socket | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; ``port`` becomes the bound port (useful with port 0). ``OSError`` if it is taken."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._config.load()
        self._server.lifespan = self._config.lifespan_class(self._config)  # what serve() would set
        await self._server.startup(sockets=[sock])
        self._loop_task = asyncio.get_running_loop().create_task(self._server.main_loop())

    async def stop(self) -> None:
        if self._loop_task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._loop_task
        self._loop_task = None
        sockets = [self._socket] if self._socket is not None else None
        await self._server.shutdown(sockets=sockets)
        self._socket = None
