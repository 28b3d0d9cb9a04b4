"""TransactionDriver.durable: one fsync at a time off the event loop, shared by waiters, and a write
made while a sync runs is covered by the next sync (a waiter never spins on a finished one)."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from riel.broker.durability import GroupCommit
from riel.broker.txn_driver import TransactionDriver
from riel.config import TOPIC_CONFIG_DEFAULTS, FlushPolicy
from riel.coordinator.transactions import Completion, TransactionCoordinator
from riel.errors import ErrorCode
from riel.records import Record, encode_batch
from riel.storage.log_manager import LogManager
from riel.storage.offsets_store import CommittedOffset
from riel.storage.partition_log import PartitionLog
from riel.storage.txn_state_log import TransactionStateLog


def driver(tmp_path: Path) -> tuple[TransactionDriver, TransactionStateLog]:
    store = TransactionStateLog(tmp_path)
    ids = itertools.count()
    coordinator = TransactionCoordinator(store, lambda: next(ids), lambda *_: None, 60_000)
    coordinator.recover()
    log_manager: Any = None  # durable() never touches partitions
    return TransactionDriver(coordinator, log_manager, GroupCommit(), lambda: None, lambda: 0), store


def open_all(tmp_path: Path) -> tuple[LogManager, TransactionDriver, list[tuple[str, dict[Any, Any]]]]:
    """A log and a driver over ``tmp_path/data``, and the offsets its transactions commit."""
    logs = LogManager(tmp_path / "data", FlushPolicy.parse("always"), dict(TOPIC_CONFIG_DEFAULTS))
    logs.open()
    committed: list[tuple[str, dict[Any, Any]]] = []
    ids = itertools.count(7)
    coordinator = TransactionCoordinator(
        TransactionStateLog(tmp_path / "data"),
        lambda: next(ids),
        lambda group, offsets, _now: committed.append((group, dict(offsets))),
        60_000,
    )
    return (
        logs,
        TransactionDriver(coordinator, logs, GroupCommit(), lambda: None, lambda: 1_000),
        committed,
    )


def open_transaction_writing_out(logs: LogManager, coordinator: TransactionCoordinator) -> object:
    """Transactional id "t" writes one record to each partition of a new topic "out" (and an offset
    for group "g") and asks to commit: what end_transaction returned, the Completion to carry out."""
    logs.create_topic("out", 2)
    init = coordinator.init_producer_id("t", 60_000, -1, -1, 0)
    pid, epoch = init.producer_id, init.producer_epoch
    coordinator.add_partitions("t", pid, epoch, [("out", 0), ("out", 1)], 0)
    coordinator.add_offsets("t", pid, epoch, "g", 0)
    coordinator.txn_offset_commit("t", pid, epoch, "g", {("in", 0): CommittedOffset(5)}, 0)
    for partition in (0, 1):
        plog = logs.partition("out", partition)
        assert plog is not None
        append_transactional(plog, pid, epoch)
        assert plog.last_stable_offset == 0
    return coordinator.end_transaction("t", pid, epoch, True, 0)


def assert_out_committed(logs: LogManager) -> None:
    """Both partitions of "out" hold the record and a COMMIT marker, and nothing is held back."""
    for partition in (0, 1):
        plog = logs.partition("out", partition)
        assert plog is not None
        assert plog.log_end_offset == 2 and plog.last_stable_offset == 2  # data + COMMIT marker
        assert plog.aborted_transactions(0, 2) == []


def append_transactional(plog: PartitionLog, producer_id: int, epoch: int) -> None:
    """One transactional record, b"v", from ``producer_id`` at ``epoch``."""
    batch = encode_batch(
        [Record(0, 0, None, b"v")],
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=0,
        is_transactional=True,
    )
    plog.append(bytearray(batch), 0)


def test_writes_during_a_sync_are_covered_by_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    txn, store = driver(tmp_path)
    real_fsync = os.fsync
    threads: set[int] = set()
    calls = 0

    def slow_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        threads.add(threading.get_ident())
        time.sleep(0.05)  # long enough for the loop to write meanwhile
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)

    async def scenario() -> None:
        txn.coordinator.init_producer_id("a", 10_000, -1, -1, 0)
        first = asyncio.ensure_future(txn.durable())
        await asyncio.sleep(0.02)  # the first sync is running now
        txn.coordinator.init_producer_id("b", 10_000, -1, -1, 0)
        waiters = [asyncio.ensure_future(txn.durable()) for _ in range(5)]
        await asyncio.wait_for(asyncio.gather(first, *waiters), 5)

    asyncio.run(scenario())
    assert store.synced == store.written == 2
    assert calls == 2  # the second write needed a second sync, which the five waiters shared
    assert threading.get_ident() not in threads  # never on the event loop's thread
    store.close()


def test_nothing_written_means_no_sync(tmp_path: Path) -> None:
    txn, store = driver(tmp_path)
    store.sync = lambda: (_ for _ in ()).throw(AssertionError("synced"))  # type: ignore[method-assign]
    asyncio.run(txn.durable())
    store.close()


def test_a_finished_sync_that_missed_a_write_is_not_waited_on_again(tmp_path: Path) -> None:
    """The window between a sync finishing and its callbacks running: a waiter then finds a done
    sync that did not cover its write. It must start a new one, not spin on the done one (which
    would block the event loop for good: found by the consume-transform-produce test)."""
    txn, store = driver(tmp_path)
    finished = threading.Event()

    async def scenario() -> None:
        stale: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stale.set_result(None)
        txn._syncing = stale  # finished before this write
        txn.coordinator.init_producer_id("a", 10_000, -1, -1, 0)
        await txn.durable()

    def run() -> None:
        asyncio.run(scenario())
        finished.set()

    worker = threading.Thread(target=run, daemon=True)  # a spinning loop cannot be cancelled
    worker.start()
    worker.join(5)
    assert finished.is_set(), "durable() spun on a finished sync"
    assert store.synced == store.written == 1
    store.close()


def test_a_transaction_a_crash_left_prepared_is_completed_at_start_up(tmp_path: Path) -> None:
    """kill -9 after the commit decision was synced but before any marker: the next start writes the
    markers (the LSO moves past the transaction), applies the transaction's offsets, and records it
    complete, before any client is served."""
    logs, txn, _ = open_all(tmp_path)
    coordinator = txn.coordinator
    assert coordinator.recover() == []
    assert isinstance(open_transaction_writing_out(logs, coordinator), Completion)
    coordinator.store.sync()  # the decision is on disk; then the crash
    coordinator.store.close()
    logs.close(clean=False)

    logs, txn, committed = open_all(tmp_path)

    async def start() -> None:
        await txn.start()
        await txn.stop()

    asyncio.run(start())
    assert_out_committed(logs)
    assert committed == [("g", {("in", 0): CommittedOffset(5)})]
    assert txn.coordinator.transactions["t"].state.value == "CompleteCommit"
    logs.close()


def test_hanging_transactions_are_aborted_at_start_up_and_owned_ones_kept(tmp_path: Path) -> None:
    """A partition holds an open transaction no transactional id owns (e.g. the coordinator's state
    was lost): the start aborts it, so the LSO is free again; an owned open transaction stays open."""
    from riel.storage.txn_index import AbortedTxn

    logs = LogManager(tmp_path / "data", FlushPolicy.parse("always"), dict(TOPIC_CONFIG_DEFAULTS))
    logs.open()
    logs.create_topic("t", 1)
    plog = logs.partition("t", 0)
    assert plog is not None
    store = TransactionStateLog(tmp_path / "data")
    ids = itertools.count(500)
    coordinator = TransactionCoordinator(store, lambda: next(ids), lambda *_: None, 60_000)
    coordinator.recover()
    owned = coordinator.init_producer_id("owned", 60_000, -1, -1, 0)
    coordinator.add_partitions("owned", owned.producer_id, owned.producer_epoch, [("t", 0)], 0)

    def write(pid: int, epoch: int) -> None:
        append_transactional(plog, pid, epoch)

    write(99, 3)  # offset 0: nobody owns it
    write(owned.producer_id, owned.producer_epoch)  # offset 1: the coordinator's ongoing transaction
    assert plog.last_stable_offset == 0
    txn = TransactionDriver(coordinator, logs, GroupCommit(), lambda: None, lambda: 1_000)

    async def start() -> None:
        await txn.start()
        await txn.stop()

    asyncio.run(start())
    assert plog.aborted_transactions(0, 10) == [AbortedTxn(99, 0, 2, 1)]
    assert plog.last_stable_offset == 1  # the owned transaction still holds it
    assert plog.producer_state.producers[99].epoch == 3
    logs.close()


def test_a_completion_survives_its_caller_being_cancelled(tmp_path: Path) -> None:
    """The producer is killed while its EndTxn waits for the markers' fsync: the server cancels that
    request's handler. The completion must still finish, or the transaction stays PrepareCommit and
    the next instance's InitProducerId gets CONCURRENT_TRANSACTIONS for ever (seen in CI)."""
    logs, txn, committed = open_all(tmp_path)

    async def scenario() -> None:
        await txn.start()
        completion = open_transaction_writing_out(logs, txn.coordinator)
        assert isinstance(completion, Completion)
        handler = asyncio.ensure_future(txn.carry_out(completion))
        await asyncio.sleep(0)  # it is waiting for the decision's fsync now
        assert txn.coordinator.transactions["t"].state.value == "PrepareCommit"
        handler.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handler
        deadline = time.monotonic() + 10
        while txn.coordinator.transactions["t"].state.value != "CompleteCommit":
            assert time.monotonic() < deadline, "the cancelled completion was never finished"
            await asyncio.sleep(0.01)
        again = txn.coordinator.init_producer_id("t", 60_000, -1, -1, 2_000)  # the next instance
        assert again.error is ErrorCode.NONE
        await txn.stop()

    asyncio.run(scenario())
    assert_out_committed(logs)
    assert committed == [("g", {("in", 0): CommittedOffset(5)})]
    logs.close()
