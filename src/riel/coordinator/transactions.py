"""The transaction coordinator: one state machine per transactional id, durable in ``TransactionStateLog``.

States (Kafka's names, shown by DescribeTransactions/ListTransactions)::

    Empty --AddPartitions/AddOffsets--> Ongoing --EndTxn--> PrepareCommit --markers--> CompleteCommit
                                               \\--EndTxn(abort), timeout, InitProducerId--> PrepareAbort
                                                                                --markers--> CompleteAbort
    Complete* --AddPartitions/AddOffsets--> Ongoing;   any but Prepare* --InitProducerId--> Empty

Ending a transaction is two steps, so that the markers can be written and fsync'ed off this class:
``end_transaction`` persists Prepare{Commit,Abort} (the decision: from then on the transaction *will*
complete that way, even across a crash) and returns the ``Completion`` to carry out; the caller writes
a marker to every partition, makes them durable, then calls ``complete``, which applies (or drops)
the transaction's offset commits and persists Complete{Commit,Abort}. At start-up, ``recover`` hands
back the completions of transactions a crash left in a Prepare state; Ongoing ones run on until they
time out, and are then aborted like any other.

Fencing: every InitProducerId of a new instance bumps the producer epoch (a new producer id once the
epoch would pass 32766) and forgets the previous one, so requests of an older instance get
PRODUCER_FENCED (INVALID_PRODUCER_EPOCH for old request versions, mapped by the handlers), and so does
its InitProducerId with its old epoch. A producer that names the *current* epoch (KIP-360, after an
abortable error) gets the next one and the previous is remembered, so a retry of that call gets the
same answer. A transaction that times out is aborted with a bumped epoch that its producer may claim
with InitProducerId (KIP-588): it cannot go on writing into the aborted transaction, but it need not
be recreated.

Synchronous and single-threaded; time is passed in. Handlers call it from the event loop.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from riel.errors import ErrorCode, StorageError
from riel.storage.offsets_store import CommittedOffset, TopicPartition
from riel.storage.txn_state_log import TransactionStateLog

log = logging.getLogger(__name__)

MAX_EPOCH = 32766  # Kafka: Short.MaxValue - 1; past it the producer gets a new id


class TxnState(enum.Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"


PREPARING = (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)


@dataclass
class TxnMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    # The epoch before the latest bump, when its owner may still claim the new one (a retried KIP-360
    # bump, a timeout abort); -1 after a new instance took over.
    last_producer_epoch: int = -1
    partitions: set[TopicPartition] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    # group -> partition -> offset, committed with TxnOffsetCommit, applied when the transaction commits
    pending_offsets: dict[str, dict[TopicPartition, CommittedOffset]] = field(default_factory=dict)
    start_ms: int = -1
    update_ms: int = -1

    def enter(self, state: TxnState, start_ms: int) -> None:
        """Move to ``state`` with nothing in the transaction (a new one, or one that ended)."""
        self.state = state
        self.partitions.clear()
        self.groups.clear()
        self.pending_offsets.clear()
        self.start_ms = start_ms

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.transactional_id,
            "producer_id": self.producer_id,
            "producer_epoch": self.producer_epoch,
            "last_producer_epoch": self.last_producer_epoch,
            "timeout_ms": self.timeout_ms,
            "state": self.state.value,
            "partitions": sorted([t, p] for t, p in self.partitions),
            "groups": sorted(self.groups),
            "pending_offsets": {
                group: [[t, p, o.offset, o.leader_epoch, o.metadata] for (t, p), o in sorted(offsets.items())]
                for group, offsets in self.pending_offsets.items()
            },
            "start_ms": self.start_ms,
            "update_ms": self.update_ms,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TxnMetadata:
        return cls(
            transactional_id=record["id"],
            producer_id=int(record["producer_id"]),
            producer_epoch=int(record["producer_epoch"]),
            last_producer_epoch=int(record.get("last_producer_epoch", -1)),
            timeout_ms=int(record["timeout_ms"]),
            state=TxnState(record["state"]),
            partitions={(str(t), int(p)) for t, p in record.get("partitions", [])},
            groups=set(record.get("groups", [])),
            pending_offsets={
                group: {
                    (str(t), int(p)): CommittedOffset(int(o), int(e), str(m)) for t, p, o, e, m in entries
                }
                for group, entries in record.get("pending_offsets", {}).items()
            },
            start_ms=int(record.get("start_ms", -1)),
            update_ms=int(record.get("update_ms", -1)),
        )


@dataclass(frozen=True)
class Completion:
    """What ending one transaction takes: a marker in each partition, then ``complete``."""

    transactional_id: str
    producer_id: int
    producer_epoch: int  # the markers' epoch
    commit: bool
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class InitResult:
    error: ErrorCode
    producer_id: int = -1
    producer_epoch: int = -1
    # A transaction that had to be aborted first: carry it out, then retry (or answer) the init.
    abort_first: Completion | None = None


class TransactionCoordinator:
    def __init__(
        self,
        store: TransactionStateLog,
        allocate_producer_id: Callable[[], int],
        commit_offsets: Callable[[str, dict[TopicPartition, CommittedOffset], int], None],
        max_timeout_ms: int,
        id_expiration_ms: int = 604_800_000,
    ) -> None:
        self.store = store
        self._allocate = allocate_producer_id
        self._commit_offsets = commit_offsets
        self.max_timeout_ms = max_timeout_ms
        self.id_expiration_ms = id_expiration_ms
        self.transactions: dict[str, TxnMetadata] = {}

    # --- start-up -------------------------------------------------------------------------------
    def recover(self) -> list[Completion]:
        """Load the state; the transactions a crash left half-ended, to complete now."""
        self.transactions = {ident: TxnMetadata.from_record(r) for ident, r in self.store.open().items()}
        return [self._completion(meta) for meta in self.transactions.values() if meta.state in PREPARING]

    def close(self) -> None:
        self.store.close()

    def _persist(self, meta: TxnMetadata, now_ms: int) -> None:
        meta.update_ms = now_ms
        self.store.write(meta.to_record())

    # --- InitProducerId -------------------------------------------------------------------------
    def init_producer_id(
        self, transactional_id: str, timeout_ms: int, producer_id: int, producer_epoch: int, now_ms: int
    ) -> InitResult:
        if timeout_ms <= 0 or timeout_ms > self.max_timeout_ms:
            return InitResult(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        meta = self.transactions.get(transactional_id)
        if meta is None:
            meta = TxnMetadata(transactional_id, self._allocate(), 0, timeout_ms)
            self.transactions[transactional_id] = meta
            self._persist(meta, now_ms)
            return InitResult(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)
        known = producer_id >= 0  # the producer says which id and epoch it has (KIP-360)
        if known and producer_id != meta.producer_id:
            return InitResult(ErrorCode.PRODUCER_FENCED)
        if known and producer_epoch != meta.producer_epoch:
            if producer_epoch == meta.last_producer_epoch >= 0 and meta.state not in PREPARING:
                # A retry of a bump it already got, or a claim of its epoch after a timeout abort.
                meta.timeout_ms = timeout_ms
                return InitResult(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)
            return InitResult(ErrorCode.PRODUCER_FENCED)
        if meta.state in PREPARING:
            return InitResult(ErrorCode.CONCURRENT_TRANSACTIONS)
        meta.timeout_ms = timeout_ms
        if meta.state is TxnState.ONGOING:
            # A new instance: the previous one died mid-transaction; abort it, fencing it with a new
            # epoch. (The same instance, naming its epoch, may claim the new one.)
            completion = self._prepare(meta, commit=False, bump_epoch=True, now_ms=now_ms, keep_last=known)
            return InitResult(ErrorCode.NONE, meta.producer_id, meta.producer_epoch, abort_first=completion)
        self._bump_epoch(meta, keep_last=known)
        meta.enter(TxnState.EMPTY, start_ms=-1)
        self._persist(meta, now_ms)
        return InitResult(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)

    def _bump_epoch(self, meta: TxnMetadata, keep_last: bool) -> None:
        """Next epoch; ``keep_last``: its owner may still claim it with the old one."""
        if meta.producer_epoch >= MAX_EPOCH:
            meta.producer_id = self._allocate()
            meta.producer_epoch, meta.last_producer_epoch = 0, -1
        else:
            meta.last_producer_epoch = meta.producer_epoch if keep_last else -1
            meta.producer_epoch += 1

    # --- inside a transaction -------------------------------------------------------------------
    def _check(self, transactional_id: str, producer_id: int, producer_epoch: int) -> TxnMetadata | ErrorCode:
        meta = self.transactions.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if producer_epoch != meta.producer_epoch:
            return ErrorCode.PRODUCER_FENCED
        if meta.state in PREPARING:
            return ErrorCode.CONCURRENT_TRANSACTIONS
        return meta

    def _begin(self, meta: TxnMetadata, now_ms: int) -> None:
        if meta.state is not TxnState.ONGOING:
            meta.enter(TxnState.ONGOING, start_ms=now_ms)

    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        now_ms: int,
    ) -> ErrorCode:
        checked = self._check(transactional_id, producer_id, producer_epoch)
        if isinstance(checked, ErrorCode):
            return checked
        wanted = set(partitions)
        if checked.state is TxnState.ONGOING and wanted <= checked.partitions:
            return ErrorCode.NONE  # a retry, or nothing new: no write
        self._begin(checked, now_ms)
        checked.partitions |= wanted
        return self._persist_or_error(checked, now_ms)

    def add_offsets(
        self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str, now_ms: int
    ) -> ErrorCode:
        checked = self._check(transactional_id, producer_id, producer_epoch)
        if isinstance(checked, ErrorCode):
            return checked
        if checked.state is TxnState.ONGOING and group_id in checked.groups:
            return ErrorCode.NONE
        self._begin(checked, now_ms)
        checked.groups.add(group_id)
        return self._persist_or_error(checked, now_ms)

    def txn_offset_commit(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        group_id: str,
        offsets: dict[TopicPartition, CommittedOffset],
        now_ms: int,
    ) -> ErrorCode:
        checked = self._check(transactional_id, producer_id, producer_epoch)
        if isinstance(checked, ErrorCode):
            return checked
        if checked.state is not TxnState.ONGOING or group_id not in checked.groups:
            return ErrorCode.INVALID_TXN_STATE  # AddOffsetsToTxn first
        checked.pending_offsets.setdefault(group_id, {}).update(offsets)
        return self._persist_or_error(checked, now_ms)

    def _persist_or_error(self, meta: TxnMetadata, now_ms: int) -> ErrorCode:
        try:
            self._persist(meta, now_ms)
        except StorageError as exc:
            log.error("persisting transaction %r failed: %s", meta.transactional_id, exc)
            return ErrorCode.KAFKA_STORAGE_ERROR
        return ErrorCode.NONE

    def verify_produce(
        self, transactional_id: str, producer_id: int, producer_epoch: int, partition: TopicPartition
    ) -> ErrorCode:
        """May this transactional batch be appended? (KIP-890's verification: only into a partition
        its ongoing transaction added, so no batch can leave a transaction open that nobody ends.)"""
        meta = self.transactions.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if producer_epoch < meta.producer_epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if meta.state is not TxnState.ONGOING or partition not in meta.partitions:
            return ErrorCode.INVALID_TXN_STATE
        return ErrorCode.NONE

    # --- ending ---------------------------------------------------------------------------------
    def end_transaction(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool, now_ms: int
    ) -> Completion | ErrorCode:
        """A Completion to carry out, ErrorCode.NONE for a retry of an end already done, or an error."""
        meta = self.transactions.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if producer_epoch != meta.producer_epoch:
            return ErrorCode.PRODUCER_FENCED
        state = meta.state
        if state is TxnState.ONGOING:
            try:
                return self._prepare(meta, commit, bump_epoch=False, now_ms=now_ms, keep_last=False)
            except StorageError as exc:
                log.error("persisting transaction %r failed: %s", transactional_id, exc)
                return ErrorCode.KAFKA_STORAGE_ERROR
        done = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        if state is done:
            return ErrorCode.NONE  # the client retried an EndTxn that had succeeded
        if state in PREPARING:
            return ErrorCode.CONCURRENT_TRANSACTIONS
        return ErrorCode.INVALID_TXN_STATE

    def _prepare(
        self, meta: TxnMetadata, commit: bool, bump_epoch: bool, now_ms: int, keep_last: bool
    ) -> Completion:
        if bump_epoch:
            self._bump_epoch(meta, keep_last)
        meta.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        self._persist(meta, now_ms)  # the decision is durable before any marker is written
        return self._completion(meta)

    def _completion(self, meta: TxnMetadata) -> Completion:
        return Completion(
            meta.transactional_id,
            meta.producer_id,
            meta.producer_epoch,
            meta.state is TxnState.PREPARE_COMMIT,
            tuple(sorted(meta.partitions)),
        )

    def complete(self, completion: Completion, now_ms: int) -> None:
        """Every marker of ``completion`` is durable: apply its offsets and persist Complete*."""
        meta = self.transactions.get(completion.transactional_id)
        if meta is None or meta.state not in PREPARING or meta.producer_epoch != completion.producer_epoch:
            return
        if completion.commit:
            for group, offsets in meta.pending_offsets.items():
                self._commit_offsets(group, offsets, now_ms)
        meta.enter(TxnState.COMPLETE_COMMIT if completion.commit else TxnState.COMPLETE_ABORT, meta.start_ms)
        self._persist(meta, now_ms)

    def expired(self, now_ms: int) -> list[Completion]:
        """Abort (with a bumped epoch) every transaction open longer than its timeout."""
        completions: list[Completion] = []
        for meta in self.transactions.values():
            if meta.state is TxnState.ONGOING and now_ms >= meta.start_ms + meta.timeout_ms:
                log.warning(
                    "aborting transaction %r (producer %d): open for more than its timeout of %d ms",
                    meta.transactional_id,
                    meta.producer_id,
                    meta.timeout_ms,
                )
                completions.append(
                    self._prepare(meta, commit=False, bump_epoch=True, now_ms=now_ms, keep_last=True)
                )
        return completions

    def expire_ids(self, now_ms: int) -> list[str]:
        """Forget the transactional ids unused for ``id_expiration_ms`` with no transaction under way
        (Kafka's transactional.id.expiration.ms), so that ids used once do not pile up for ever. A
        producer that comes back with one starts afresh (a new producer id)."""
        expired = [
            meta.transactional_id
            for meta in self.transactions.values()
            if meta.state not in (TxnState.ONGOING, *PREPARING)
            and now_ms - meta.update_ms >= self.id_expiration_ms
        ]
        for transactional_id in expired:
            self.store.write({"id": transactional_id, "deleted": True})
            del self.transactions[transactional_id]
        return expired

    def next_timeout_ms(self) -> int | None:
        deadlines = [
            m.start_ms + m.timeout_ms for m in self.transactions.values() if m.state is TxnState.ONGOING
        ]
        return min(deadlines) if deadlines else None

    def owns_open_transaction(self, producer_id: int, partition: TopicPartition) -> bool:
        """Is ``partition`` part of an ongoing transaction of ``producer_id``?"""
        return any(
            meta.producer_id == producer_id
            and meta.state is TxnState.ONGOING
            and partition in meta.partitions
            for meta in self.transactions.values()
        )

    def epoch_of(self, producer_id: int) -> int:
        """The coordinator's epoch for ``producer_id`` (-1 if it knows no such producer)."""
        return max(
            (m.producer_epoch for m in self.transactions.values() if m.producer_id == producer_id), default=-1
        )

    # --- for operators --------------------------------------------------------------------------
    def pending_offsets_of(self, group_id: str) -> set[TopicPartition]:
        """Partitions of ``group_id`` with a transactional offset commit not yet decided."""
        pending: set[TopicPartition] = set()
        for meta in self.transactions.values():
            pending |= set(meta.pending_offsets.get(group_id, {}))
        return pending
