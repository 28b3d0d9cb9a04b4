"""``riel serve``: open the log, listen, answer until SIGTERM/SIGINT, then shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import ssl
from collections.abc import Callable
from typing import Any

from riel.broker.context import BrokerContext
from riel.broker.quotas import ClientQuotas
from riel.broker.router import Router
from riel.broker.sasl.handlers import credential_store
from riel.broker.sasl.session import SaslSession, store_lookup
from riel.broker.stats import BrokerStats
from riel.broker.txn_driver import TransactionDriver
from riel.clock import wall_clock_ms
from riel.config import BrokerConfig, Listener
from riel.coordinator.coordinator import GroupCoordinator
from riel.coordinator.driver import CoordinatorDriver
from riel.coordinator.transactions import TransactionCoordinator
from riel.server.connection import KafkaConnection
from riel.server.http import HttpServer
from riel.server.limits import ConnectionLimits, raise_open_files_limit
from riel.storage.log_manager import LogManager
from riel.storage.offsets_store import OffsetsStore
from riel.storage.producer_ids import ProducerIdAllocator
from riel.storage.txn_state_log import TransactionStateLog

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
        self.limits = ConnectionLimits(config.limits)
        self._servers: list[asyncio.Server] = []
        self._stopped = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self._groups: CoordinatorDriver | None = None
        self._transactions: TransactionDriver | None = None

    def _high_watermark(self, topic: str, partition: int) -> int | None:
        plog = self.log_manager.partition(topic, partition)
        return None if plog is None else plog.high_watermark

    async def start(self) -> None:
        raise_open_files_limit()  # every connection holds a descriptor
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
        coordinator = self._groups.coordinator
        transactions = TransactionCoordinator(
            TransactionStateLog(self.config.data_dir),
            ctx.producer_ids.allocate,
            coordinator.commit_transactional,
            self.config.transaction_max_timeout_ms,
            self.config.transactional_id_expiration_ms,
        )
        self._transactions = TransactionDriver(
            transactions, self.log_manager, ctx.group_commit, ctx.notify_appended, wall_clock_ms
        )
        await self._transactions.start()  # finishes what a crash left half-ended, before serving
        ctx.transactions = self._transactions
        quotas = ClientQuotas(self.config.limits)
        ctx.quotas = quotas if quotas.enabled else None
        self.ctx = ctx
        router = Router(ctx)
        loop = asyncio.get_running_loop()
        bound: list[Listener] = []
        for listener in self.config.effective_listeners():
            server = await self._listen(router, listener)
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1] if server.sockets else listener.port
            bound.append(dataclasses.replace(listener, port=port))
        if not self.config.listeners and self.config.port == 0:
            self.config.port = bound[0].port
        self.config.listeners = bound  # with the ports actually bound (port 0: any free port)
        self._housekeeping = loop.create_task(self._tick_storage())
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
            "riel %s listening on %s, data in %s, flush policy %s",
            _version(),
            ", ".join(f"{lis.name}://{lis.host}:{lis.port}" for lis in bound),
            self.config.data_dir,
            self.config.flush.name,
        )

    async def _listen(self, router: Router, listener: Listener) -> asyncio.Server:
        tls = _tls_context(self.config, client_auth=not listener.sasl) if listener.tls else None
        ctx = router.ctx
        max_bytes = self.config.max_request_bytes

        def connection() -> KafkaConnection:
            sasl = SaslSession(store_lookup(credential_store(ctx))) if listener.sasl else None
            return KafkaConnection(router, max_bytes, self.connections, listener.name, sasl, self.limits)

        return await asyncio.get_running_loop().create_server(
            connection, listener.host, listener.port, reuse_address=True, ssl=tls
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
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5)
        if self._transactions is not None:
            await self._transactions.stop()
        if self._groups is not None:
            await self._groups.stop()
        self.log_manager.close()
        log.info("riel stopped cleanly")


def _tls_context(config: BrokerConfig, client_auth: bool) -> ssl.SSLContext:
    """The server side of SSL / SASL_SSL listeners (TLS 1.2+), from the configured PEM files.
    Client certificates are asked for on SSL listeners only: like Kafka, which ignores an unprefixed
    ssl.client.auth on SASL_SSL listeners because the SASL login names the client there."""
    if config.ssl_certfile is None:
        raise ValueError("an SSL or SASL_SSL listener needs --ssl-certfile (and --ssl-keyfile)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    if config.ssl_cafile is not None:
        context.load_verify_locations(config.ssl_cafile)
    if client_auth and config.ssl_client_auth != "none":
        context.verify_mode = ssl.CERT_REQUIRED if config.ssl_client_auth == "required" else ssl.CERT_OPTIONAL
    return context


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
