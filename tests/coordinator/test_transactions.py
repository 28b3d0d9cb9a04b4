"""The transaction coordinator's state machine and its durable state: InitProducerId epochs and fencing,
AddPartitions/AddOffsets, the two-step end (prepare, then complete once markers are durable), offset
commits applied only on commit, timeouts, and recovery of half-ended transactions after a crash."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from riel.coordinator.transactions import MAX_EPOCH, Completion, TransactionCoordinator, TxnState
from riel.errors import ErrorCode
from riel.storage.offsets_store import CommittedOffset, TopicPartition
from riel.storage.txn_state_log import TransactionStateLog

T0 = 1_000_000
MAX_TIMEOUT = 60_000

Committed = list[tuple[str, dict[TopicPartition, CommittedOffset]]]


def coordinator(data_dir: Path, committed: Committed | None = None) -> TransactionCoordinator:
    ids = itertools.count(100)
    sink = committed if committed is not None else []
    txn = TransactionCoordinator(
        TransactionStateLog(data_dir),
        lambda: next(ids),
        lambda group, offsets, _now: sink.append((group, dict(offsets))),
        MAX_TIMEOUT,
    )
    assert txn.recover() == []
    return txn


def init(
    txn: TransactionCoordinator, tid: str = "t", timeout: int = 10_000, now: int = T0
) -> tuple[int, int]:
    result = txn.init_producer_id(tid, timeout, -1, -1, now)
    assert result.error is ErrorCode.NONE and result.abort_first is None
    return result.producer_id, result.producer_epoch


def test_init_allocates_then_bumps_the_epoch(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    assert init(txn) == (100, 0)
    assert init(txn) == (100, 1)
    assert init(txn, "other") == (101, 0)


def test_timeout_is_validated_against_the_maximum(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    for bad in (0, -1, MAX_TIMEOUT + 1):
        assert txn.init_producer_id("t", bad, -1, -1, T0).error is ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert txn.init_producer_id("t", MAX_TIMEOUT, -1, -1, T0).error is ErrorCode.NONE


def test_a_commit_goes_through_prepare_and_applies_offsets_only_when_complete(tmp_path: Path) -> None:
    committed: Committed = []
    txn = coordinator(tmp_path, committed)
    pid, epoch = init(txn)
    assert txn.add_partitions("t", pid, epoch, [("a", 0), ("b", 1)], T0) is ErrorCode.NONE
    assert txn.add_offsets("t", pid, epoch, "g", T0) is ErrorCode.NONE
    offsets = {("in", 0): CommittedOffset(42)}
    assert txn.txn_offset_commit("t", pid, epoch, "g", offsets, T0) is ErrorCode.NONE
    assert txn.pending_offsets_of("g") == {("in", 0)}
    completion = txn.end_transaction("t", pid, epoch, True, T0 + 1)
    assert completion == Completion("t", pid, epoch, True, (("a", 0), ("b", 1)))
    assert txn.transactions["t"].state is TxnState.PREPARE_COMMIT and committed == []
    # While the markers are written, the producer must wait.
    assert txn.add_partitions("t", pid, epoch, [("a", 0)], T0) is ErrorCode.CONCURRENT_TRANSACTIONS
    assert isinstance(completion, Completion)
    txn.complete(completion, T0 + 2)
    assert txn.transactions["t"].state is TxnState.COMPLETE_COMMIT
    assert committed == [("g", offsets)] and txn.pending_offsets_of("g") == set()
    # A retried EndTxn succeeds without doing anything; the opposite decision is refused.
    assert txn.end_transaction("t", pid, epoch, True, T0 + 3) is ErrorCode.NONE
    assert txn.end_transaction("t", pid, epoch, False, T0 + 3) is ErrorCode.INVALID_TXN_STATE


def test_an_abort_drops_the_offsets(tmp_path: Path) -> None:
    committed: Committed = []
    txn = coordinator(tmp_path, committed)
    pid, epoch = init(txn)
    txn.add_offsets("t", pid, epoch, "g", T0)
    txn.txn_offset_commit("t", pid, epoch, "g", {("in", 0): CommittedOffset(7)}, T0)
    completion = txn.end_transaction("t", pid, epoch, False, T0)
    assert isinstance(completion, Completion) and not completion.commit and completion.partitions == ()
    txn.complete(completion, T0)
    assert committed == [] and txn.transactions["t"].state is TxnState.COMPLETE_ABORT


def test_offsets_need_add_offsets_first(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    pid, epoch = init(txn)
    offsets = {("in", 0): CommittedOffset(1)}
    assert txn.txn_offset_commit("t", pid, epoch, "g", offsets, T0) is ErrorCode.INVALID_TXN_STATE


def test_a_new_instance_fences_the_old_one_and_aborts_its_transaction(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    pid, old = init(txn)
    txn.add_partitions("t", pid, old, [("a", 0)], T0)
    result = txn.init_producer_id("t", 10_000, -1, -1, T0 + 5)
    assert result.error is ErrorCode.NONE and result.producer_epoch == old + 1
    assert result.abort_first == Completion("t", pid, old + 1, False, (("a", 0),))
    txn.complete(result.abort_first, T0 + 6)
    for error in (
        txn.add_partitions("t", pid, old, [("a", 0)], T0),
        txn.add_offsets("t", pid, old, "g", T0),
        txn.end_transaction("t", pid, old, True, T0),
    ):
        assert error is ErrorCode.PRODUCER_FENCED
    assert txn.verify_produce("t", pid, old, ("a", 0)) is ErrorCode.INVALID_PRODUCER_EPOCH
    assert txn.add_partitions("t", pid, old + 1, [("a", 0)], T0) is ErrorCode.NONE
    assert txn.verify_produce("t", pid, old + 1, ("a", 0)) is ErrorCode.NONE
    assert txn.verify_produce("t", pid, old + 1, ("a", 1)) is ErrorCode.INVALID_TXN_STATE
    assert txn.verify_produce("t", pid + 7, old + 1, ("a", 0)) is ErrorCode.INVALID_PRODUCER_ID_MAPPING


def test_init_with_a_known_producer_id_and_epoch_kip_360(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    pid, epoch = init(txn)
    bumped = txn.init_producer_id("t", 10_000, pid, epoch, T0)
    assert (bumped.error, bumped.producer_epoch) == (ErrorCode.NONE, epoch + 1)
    # A retry of that call (its response was lost) gets the same epoch, without a second bump ...
    assert txn.init_producer_id("t", 10_000, pid, epoch, T0).producer_epoch == epoch + 1
    # ... naming the current epoch bumps again; anything older, or another producer id, is fenced.
    assert txn.init_producer_id("t", 10_000, pid, epoch + 1, T0).producer_epoch == epoch + 2
    assert txn.init_producer_id("t", 10_000, pid, epoch, T0).error is ErrorCode.PRODUCER_FENCED
    assert txn.init_producer_id("t", 10_000, pid + 1, epoch + 2, T0).error is ErrorCode.PRODUCER_FENCED


def test_a_fenced_zombie_cannot_claim_the_new_epoch(tmp_path: Path) -> None:
    """A new instance (no producer id given) takes over; the old one's KIP-360 bump with its old epoch
    is refused, so it cannot fence the new instance in turn."""
    txn = coordinator(tmp_path)
    pid, old = init(txn)
    assert init(txn) == (pid, old + 1)
    assert txn.init_producer_id("t", 10_000, pid, old, T0).error is ErrorCode.PRODUCER_FENCED
    assert txn.transactions["t"].producer_epoch == old + 1


def test_after_a_timeout_abort_the_producer_claims_the_bumped_epoch_kip_588(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    pid, epoch = init(txn, timeout=1_000)
    txn.add_partitions("t", pid, epoch, [("a", 0)], T0)
    (completion,) = txn.expired(T0 + 1_000)
    txn.complete(completion, T0 + 1_000)
    assert txn.end_transaction("t", pid, epoch, True, T0 + 1_001) is ErrorCode.PRODUCER_FENCED
    claimed = txn.init_producer_id("t", 1_000, pid, epoch, T0 + 1_002)
    assert (claimed.error, claimed.producer_id, claimed.producer_epoch) == (ErrorCode.NONE, pid, epoch + 1)
    assert txn.add_partitions("t", pid, epoch + 1, [("a", 0)], T0 + 1_003) is ErrorCode.NONE


def test_an_exhausted_epoch_gets_a_new_producer_id(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    pid, _ = init(txn)
    txn.transactions["t"].producer_epoch = MAX_EPOCH
    assert init(txn) == (pid + 1, 0)


def test_a_transaction_past_its_timeout_is_aborted_with_a_bumped_epoch(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    pid, epoch = init(txn, timeout=5_000)
    txn.add_partitions("t", pid, epoch, [("a", 0)], T0)
    assert txn.next_timeout_ms() == T0 + 5_000
    assert txn.expired(T0 + 4_999) == []
    (completion,) = txn.expired(T0 + 5_000)
    assert completion == Completion("t", pid, epoch + 1, False, (("a", 0),))
    txn.complete(completion, T0 + 5_001)
    assert txn.next_timeout_ms() is None
    assert txn.end_transaction("t", pid, epoch, True, T0 + 6_000) is ErrorCode.PRODUCER_FENCED


def test_state_survives_a_restart_and_half_ended_transactions_come_back(tmp_path: Path) -> None:
    txn = coordinator(tmp_path)
    pid, epoch = init(txn)
    txn.add_partitions("t", pid, epoch, [("a", 0)], T0)
    txn.add_offsets("t", pid, epoch, "g", T0)
    txn.txn_offset_commit("t", pid, epoch, "g", {("in", 3): CommittedOffset(9, 2, "m")}, T0)
    other_pid, other_epoch = init(txn, "open")
    txn.add_partitions("open", other_pid, other_epoch, [("b", 0)], T0)
    completion = txn.end_transaction("t", pid, epoch, True, T0)
    txn.close()  # a crash after the decision, before the markers
    committed: Committed = []
    ids = itertools.count(500)
    again = TransactionCoordinator(
        TransactionStateLog(tmp_path),
        lambda: next(ids),
        lambda g, o, _n: committed.append((g, dict(o))),
        MAX_TIMEOUT,
    )
    assert again.recover() == [completion]
    assert again.transactions["open"].state is TxnState.ONGOING
    assert again.transactions["open"].partitions == {("b", 0)}
    assert isinstance(completion, Completion)
    again.complete(completion, T0 + 1)
    assert committed == [("g", {("in", 3): CommittedOffset(9, 2, "m")})]
    # The open one times out from its original start time, not from the restart.
    assert again.next_timeout_ms() == T0 + 10_000
    assert init(again, "fresh")[0] == 500


@pytest.mark.parametrize("damage", [b"", b"0000", b"deadbeef {not json}\n"])
def test_a_torn_last_line_is_dropped(tmp_path: Path, damage: bytes) -> None:
    txn = coordinator(tmp_path)
    init(txn)
    txn.close()
    path = tmp_path / "transactions" / "state.log"
    good = path.read_bytes()
    path.write_bytes(good + damage)
    again = coordinator(tmp_path)
    assert again.transactions["t"].producer_epoch == 0
    assert path.read_bytes() == good
    assert init(again) == (100, 1)


def test_unused_transactional_ids_expire_but_never_mid_transaction(tmp_path: Path) -> None:
    ids = itertools.count(100)
    txn = TransactionCoordinator(
        TransactionStateLog(tmp_path), lambda: next(ids), lambda *_: None, MAX_TIMEOUT, 1_000
    )
    assert txn.recover() == []
    init(txn, "idle", now=T0)
    pid, epoch = init(txn, "busy", now=T0)
    txn.add_partitions("busy", pid, epoch, [("a", 0)], T0)
    assert txn.expire_ids(T0 + 999) == []
    assert txn.expire_ids(T0 + 1_000) == ["idle"]  # "busy" has a transaction open
    txn.close()
    again = TransactionCoordinator(
        TransactionStateLog(tmp_path), lambda: next(ids), lambda *_: None, MAX_TIMEOUT
    )
    assert again.recover() == []
    assert set(again.transactions) == {"busy"}  # the expiry is durable
    assert init(again, "idle") == (102, 0)  # a returning producer starts afresh
