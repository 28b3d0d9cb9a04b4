"""``riel serve``: open the log, listen, answer until SIGTERM/SIGINT, then shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from riel.broker.context import BrokerContext
from riel.broker.router import Router
from riel.broker.stats import BrokerStats
from riel.clock import wall_clock_ms
from riel.config import BrokerConfig
from riel.coordinator.coordinator import GroupCoordinator
from riel.coordinator.driver import CoordinatorDriver
from riel.server.connection import KafkaConnection
from riel.server.http import HttpServer
from riel.storage.log_manager import LogManager
from riel.storage.offsets_store import OffsetsStore
from riel.storage.producer_ids import ProducerIdAllocator

log = logging.getLogger("riel")

TICK_INTERVAL_S = 0.2


# Builds the ASGI app of the HTTP listener from the running server (the console layer provides it:
# the server does not import the faces above it).
HttpAppFactory = Callable[["RielServer"], Any]


class RielServer:
    def __init__(self, config: BrokerConfig, http_app: HttpAppFactory | None = None) -> None:
        self.config = config
        self._http_app = http_app
        self.http: HttpServer | None = None
        self.ctx: BrokerContext | None = None
        self.log_manager = LogManager(
            config.data_dir,
            config.flush,
            config.topic_defaults,
            owner_note=f"riel serve listening on {config.host}:{config.port}, "
            f"reach it with riel.connect('{config.advertised_host or config.host}:"
            f"{config.advertised_port or config.port}')",
            retention_check_interval_ms=config.retention_check_interval_ms,
            cleaner_backoff_ms=config.log_cleaner_backoff_ms,
        )
        self.connections: set[KafkaConnection] = set()
        self._server: asyncio.Server | None = None
        self._stopped = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self._groups: CoordinatorDriver | None = None

    def _high_watermark(self, topic: str, partition: int) -> int | None:
        plog = self.log_manager.partition(topic, partition)
        return None if plog is None else plog.high_watermark

    async def start(self) -> None:
        self.log_manager.open()
        # Opened after the log manager, which holds the data-directory lock.
        offsets = OffsetsStore(self.config.data_dir, self.config.flush)
        offsets.open()
        coordinator = GroupCoordinator(self.config.groups, offsets, self._high_watermark, wall_clock_ms())
        self._groups = CoordinatorDriver(coordinator, wall_clock_ms)
        self._groups.start()
        ctx = BrokerContext(
            config=self.config,
            log=self.log_manager,
            producer_ids=ProducerIdAllocator(self.config.data_dir / "producer-ids"),
            groups=self._groups,
        )
        self.ctx = ctx
        router = Router(ctx)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaConnection(router, self.config.max_request_bytes, self.connections),
            self.config.host,
            self.config.port,
            reuse_address=True,
        )
        self._housekeeping = loop.create_task(self._tick_storage())
        sockets = self._server.sockets
        if sockets and self.config.port == 0:
            self.config.port = sockets[0].getsockname()[1]
        if self._http_app is not None and self.config.http_enabled:
            self.http = HttpServer(self._http_app(self), self.config.http_host, self.config.http_port)
            await self.http.start()
            log.info(
                "%s on http://%s:%d",
                "web console and /metrics" if self.config.console_enabled else "/metrics and /health",
                self.config.http_host,
                self.http.port,
            )
        log.info(
            "riel %s listening on %s:%d, data in %s, flush policy %s",
            _version(),
            self.config.host,
            self.config.port,
            self.config.data_dir,
            self.config.flush.name,
        )

    async def _tick_storage(self) -> None:
        # Interval flushes must happen even when no append arrives to trigger them.
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            self.log_manager.tick(wall_clock_ms())

    def request_stop(self) -> None:
        self._stopped.set()

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()
        await self.stop()

    @property
    def stats(self) -> BrokerStats:
        assert self.ctx is not None, "server not started"
        return self.ctx.stats

    @property
    def groups(self) -> CoordinatorDriver:
        assert self._groups is not None, "server not started"
        return self._groups

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if self._groups is not None:
            await self._groups.stop()
        self.log_manager.close()
        log.info("riel stopped cleanly")


def _version() -> str:
    # From the installed distribution: importing the ``riel`` package itself would pull in the SDK.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("riel")
    except PackageNotFoundError:
        return "unknown"


async def _main(config: BrokerConfig, http_app: HttpAppFactory | None) -> None:
    server = RielServer(config, http_app)
    # Handlers first: a SIGTERM that arrives while the server starts (clients may already connect)
    # must still stop it cleanly, not kill it with the default action.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    await server.start()
    await server.serve_until_stopped()


def run(config: BrokerConfig, http_app: HttpAppFactory | None = None) -> None:
    asyncio.run(_main(config, http_app))
