"""The transaction driver: the async face of the transaction coordinator.

Riel is its own transaction coordinator and the leader of every partition, so ending a transaction
needs no WriteTxnMarkers round trip: ``carry_out`` appends the marker to each partition, waits until
all of them are fsync'ed (whatever the flush policy: a marker lost in a crash after the coordinator
recorded the outcome would leave its partition's LSO stuck), and then lets the coordinator record
the transaction complete. A timer task aborts transactions that outlive their timeout and retries
completions a disk error interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from riel.broker.durability import GroupCommit
from riel.coordinator.transactions import Completion, TransactionCoordinator
from riel.errors import KafkaApiError, StorageError
from riel.storage.log_manager import LogManager

log = logging.getLogger(__name__)

RETRY_MS = 1000  # how soon a completion that failed (a disk error) is tried again
ID_SCAN_INTERVAL_MS = 60_000  # how often transactional ids are checked for expiry


class TransactionDriver:
    """The async face of the transaction coordinator: carries out completions, runs the timeouts."""

    def __init__(
        self,
        coordinator: TransactionCoordinator,
        log_manager: LogManager,
        group_commit: GroupCommit,
        notify_appended: Callable[[], None],
        clock_ms: Callable[[], int],
    ) -> None:
        self.coordinator = coordinator
        self._log = log_manager
        self._group_commit = group_commit
        self._notify = notify_appended
        self._clock_ms = clock_ms
        self._unfinished: list[Completion] = []
        self._carrying: dict[str, asyncio.Task[bool]] = {}  # by transactional id: one at a time each
        self._syncing: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_id_scan_ms = 0
        self._wake = asyncio.Event()

    async def start(self) -> None:
        for completion in self.coordinator.recover():  # decided before a crash: finish them first
            log.warning(
                "completing transaction %r (%s) left half-ended by a crash",
                completion.transactional_id,
                "commit" if completion.commit else "abort",
            )
            await self.carry_out(completion)
        await self._abort_hanging()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _abort_hanging(self) -> None:
        """Abort transactions open in a partition that no ongoing transaction of the coordinator
        covers (Kafka's "hanging transactions"). Riel's own order of writes cannot leave one, but a
        lost or restored coordinator state could, and one would hold the partition's LSO for ever."""
        now = self._clock_ms()
        for name, info in self._log.topics().items():
            for index in range(info.partitions):
                plog = self._log.partition(name, index)
                if plog is None:
                    continue
                for producer_id, first in list(plog.producer_state.open_transactions.items()):
                    if self.coordinator.owns_open_transaction(producer_id, (name, index)):
                        continue
                    entry = plog.producer_state.producers[producer_id]
                    epoch = max(entry.epoch, self.coordinator.epoch_of(producer_id))
                    log.warning(
                        "%s-%d: aborting a transaction of producer %d open since offset %d that no "
                        "transactional id owns",
                        name,
                        index,
                        producer_id,
                        first,
                    )
                    try:
                        result = plog.append_marker(producer_id, epoch, False, 0, now, defer_flush=True)
                        await self._group_commit.wait_durable(plog, result.last_offset)
                    except (StorageError, KafkaApiError) as exc:
                        log.error("%s-%d: aborting the hanging transaction failed: %s", name, index, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._carrying:  # completions under way finish before the state log closes
            await asyncio.wait(list(self._carrying.values()))
        self.coordinator.close()

    async def durable(self) -> None:
        """Return once every coordinator state write so far is fsync'ed: one fsync at a time, on a
        worker thread, shared by everyone waiting. StorageError if the disk failed."""
        store = self.coordinator.store
        target = store.written
        while store.synced < target:
            running = self._syncing
            if running is None or running.done():
                # (A finished sync may have started before our write: then it did not cover it.)
                running = self._syncing = asyncio.ensure_future(asyncio.to_thread(store.sync))
            await asyncio.shield(running)

    def poke(self) -> None:
        """A transaction started: its timeout may be the next deadline."""
        self._wake.set()

    async def carry_out(self, completion: Completion) -> bool:
        """Write the markers, make them durable, record the outcome. False if the disk failed (the
        completion is then retried from the timer until it succeeds).

        The work runs in a task of the driver's own, shielded from the caller: the caller is usually a
        request handler, which is cancelled when its client disconnects. A producer killed during
        EndTxn must not leave its transaction in PrepareCommit with half its markers written: every
        later InitProducerId for that id would get CONCURRENT_TRANSACTIONS until a restart (found by
        the consume-transform-produce test)."""
        ident = completion.transactional_id
        running = self._carrying.get(ident)
        if running is None or running.done():
            running = self._carrying[ident] = asyncio.get_running_loop().create_task(
                self._carry_out(completion)
            )
            running.add_done_callback(self._forget_carried)
        return await asyncio.shield(running)

    def _forget_carried(self, task: asyncio.Task[bool]) -> None:
        self._carrying = {ident: t for ident, t in self._carrying.items() if t is not task}

    async def _carry_out(self, completion: Completion) -> bool:
        now = self._clock_ms()
        try:
            await self.durable()  # the decision first: a marker must never precede it on disk
            for topic, partition in completion.partitions:
                plog = self._log.partition(topic, partition)
                if plog is None:  # deleted meanwhile: nothing left to mark
                    continue
                result = plog.append_marker(
                    completion.producer_id,
                    completion.producer_epoch,
                    completion.commit,
                    0,
                    now,
                    defer_flush=True,
                )
                await self._group_commit.wait_durable(plog, result.last_offset)
            # Not waited for: if a crash loses it, the start-up redoes the completion from the durable
            # Prepare state (markers again, offsets again: same outcome). It cannot be lost once the
            # producer's next transaction is under way: that one's first write is synced after it.
            self.coordinator.complete(completion, self._clock_ms())
        except (StorageError, KafkaApiError) as exc:
            log.error("ending transaction %r failed, will retry: %s", completion.transactional_id, exc)
            if completion not in self._unfinished:
                self._unfinished.append(completion)
            return False
        finally:
            self._notify()
        return True

    async def _run(self) -> None:
        while True:
            now = self._clock_ms()
            for completion in self.coordinator.expired(now):
                await self.carry_out(completion)
            if now >= self._next_id_scan_ms:  # a scan of every id: once a minute is plenty
                self._next_id_scan_ms = now + ID_SCAN_INTERVAL_MS
                if self.coordinator.expire_ids(now):
                    await self.durable()
            retry, self._unfinished = self._unfinished, []
            for completion in retry:
                await self.carry_out(completion)
            deadline = self.coordinator.next_timeout_ms()
            wait_ms = RETRY_MS if self._unfinished or deadline is None else max(deadline - now, 0) + 1
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(wait_ms, 60_000) / 1000)
