"""What every handler needs: the log, the group coordinator, the broker's settings, a clock, and the
append notifier."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from riel.broker.access import AccessControl
from riel.broker.durability import GroupCommit
from riel.broker.quotas import ClientQuotas
from riel.broker.stats import BrokerStats
from riel.broker.txn_driver import TransactionDriver
from riel.clock import wall_clock_ms
from riel.config import BrokerConfig
from riel.coordinator.driver import CoordinatorDriver
from riel.storage.credentials import CredentialStore
from riel.storage.log_manager import LogManager
from riel.storage.producer_ids import ProducerIdAllocator


@dataclass
class BrokerContext:
    config: BrokerConfig
    log: LogManager
    producer_ids: ProducerIdAllocator
    groups: CoordinatorDriver
    clock_ms: Callable[[], int] = wall_clock_ms
    group_commit: GroupCommit = field(default_factory=GroupCommit)
    stats: BrokerStats = field(default_factory=BrokerStats)
    credentials: CredentialStore | None = None  # SASL users; opened on first use
    access: AccessControl | None = None  # ACLs and the authorizer; opened on first use
    quotas: ClientQuotas | None = None  # client byte-rate quotas; None: none configured
    transactions: TransactionDriver | None = None  # started with the server
    _waiters: set[asyncio.Future[None]] = field(default_factory=set)

    @property
    def advertised_host(self) -> str:
        return self.config.advertised_host or self.config.host

    @property
    def advertised_port(self) -> int:
        return self.config.advertised_port or self.config.port

    def advertised_address(self, listener: str) -> tuple[str, int]:
        """(host, port) clients of ``listener`` (a listener name, "" if unknown) should connect to."""
        for candidate in self.config.effective_listeners():
            if candidate.name == listener:
                return candidate.advertised
        return self.advertised_host, self.advertised_port

    def notify_appended(self) -> None:
        """Wake every long-polling fetch: new data may satisfy its min_bytes."""
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for_append(self, timeout_s: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)
