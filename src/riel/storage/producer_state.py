"""Idempotent-producer state of one partition: per producer id, its epoch and its last 5 batches.

Rules (Kafka's ``ProducerStateManager``/``ProducerAppendInfo``), checked on each batch that carries a
producer id (``producer_id == -1`` is a plain batch and skips all of this):

- same epoch, sequence range equal to one of the last 5 batches: a retry of a batch we already
  stored; the append succeeds with the original offsets and writes nothing;
- epoch lower than the producer's current one: INVALID_PRODUCER_EPOCH (a zombie producer);
- epoch higher than the current one: a new producer session; it must start at sequence 0, and the
  old epoch's batches are forgotten;
- same epoch: the first sequence must follow the last stored one (wrapping at 2**31-1 to 0), else
  OUT_OF_ORDER_SEQUENCE_NUMBER (a gap, or a retry older than the 5 batches we remember);
- producer id we have no state for: accepted with any sequence. Kafka does the same once a producer's
  batches were removed by retention or DeleteRecords (it answers UNKNOWN_PRODUCER_ID only in narrow
  transactional cases); a fresh producer starts at 0 anyway.

Transactions: a transactional batch of a producer with no transaction open in this partition opens
one at its base offset; a marker (control batch) closes it. The first offsets of the open
transactions give the last stable offset (LSO): read_committed consumers read only below it.

Durability: a snapshot file ``<offset>.snapshot`` holds the state of every batch below ``offset``; it
is written when a segment rolls and on clean close, and recovery replays the batch headers from the
newest usable snapshot to the end of the log. Snapshots are binary with a CRC-32C so a damaged one is
skipped, never half-trusted.
"""

from __future__ import annotations

import contextlib
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import crc32c

from riel.errors import ErrorCode, KafkaApiError
from riel.records.batch_header import NO_PRODUCER_EPOCH, BatchHeader
from riel.storage.atomic_file import write_file_atomically

BATCHES_PER_PRODUCER: Final = 5  # what Kafka keeps, and what max.in.flight.requests (<= 5) relies on
# Kafka's producer.id.expiration.ms: a producer silent this long (by its batches' timestamps) and with
# no transaction open is forgotten, so partitions written by ever new producer ids stay small.
PRODUCER_ID_EXPIRATION_MS: Final = 24 * 60 * 60 * 1000
SNAPSHOT_SUFFIX: Final = ".snapshot"
SNAPSHOTS_KEPT: Final = 2
_INT32_MAX: Final = 2**31 - 1

_MAGIC_V1: Final = b"RPS1"  # before transactions: no open-transaction offset
_MAGIC: Final = b"RPS2"
_PREFIX: Final = struct.Struct(">4sI")  # magic, CRC-32C of everything after the prefix
_COUNT: Final = struct.Struct(">i")
_PRODUCER_V1: Final = struct.Struct(">qhqb")  # producer id, epoch, last timestamp, number of batches
_PRODUCER: Final = struct.Struct(">qhqqb")  # ... and the first offset of its open transaction (-1)
_BATCH: Final = struct.Struct(">iiqqq")  # first seq, last seq, base offset, last offset, max timestamp


@dataclass(slots=True, frozen=True)
class BatchMetadata:
    """What a duplicate needs to be answered: the offsets the original batch got."""

    first_sequence: int
    last_sequence: int
    base_offset: int
    last_offset: int
    max_timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_PER_PRODUCER))
    last_timestamp: int = -1
    txn_first_offset: int = -1  # where its open transaction in this partition starts; -1: none

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else -1

    def find_duplicate(self, first_sequence: int, last_sequence: int) -> BatchMetadata | None:
        for batch in self.batches:
            if batch.first_sequence == first_sequence and batch.last_sequence == last_sequence:
                return batch
        return None


def in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == _INT32_MAX)


class ProducerStateManager:
    """In-memory producer state of one partition. Not thread-safe (one event-loop thread)."""

    __slots__ = ("changed", "open_transactions", "producers")

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        # producer id -> first offset of its open transaction here: small, read on every fetch.
        self.open_transactions: dict[int, int] = {}
        self.changed = False  # since the last snapshot

    def expire(self, now_ms: int, max_age_ms: int = PRODUCER_ID_EXPIRATION_MS) -> int:
        """Forget producers with no open transaction whose last batch is older than ``max_age_ms``
        (a later batch of one is then taken as a new producer's, as in Kafka). Returns how many."""
        horizon = now_ms - max_age_ms
        stale = [
            producer_id
            for producer_id, entry in self.producers.items()
            if entry.txn_first_offset < 0 and entry.last_timestamp <= horizon
        ]
        for producer_id in stale:
            del self.producers[producer_id]
        if stale:
            self.changed = True
        return len(stale)

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest open transaction, None when none is open."""
        return min(self.open_transactions.values()) if self.open_transactions else None

    def check(self, headers: list[BatchHeader]) -> BatchMetadata | None:
        """Validate the producer batches of one append, before anything is written.

        Returns the original batch when the append is a retry of a stored batch (the caller then writes
        nothing and answers with its offsets), None when the append may proceed; raises
        ``KafkaApiError`` (INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER) otherwise. Batches of the
        same producer later in the same append are checked against the earlier ones.
        """
        pending: dict[int, tuple[int, int]] = {}  # producer id -> (epoch, last sequence) in this append
        for header in headers:
            producer_id = header.producer_id
            if producer_id < 0:
                continue
            epoch = header.producer_epoch
            first = header.base_sequence
            if producer_id in pending:
                current_epoch, last_sequence = pending[producer_id]
            else:
                entry = self.producers.get(producer_id)
                if entry is None or entry.epoch == NO_PRODUCER_EPOCH:
                    pending[producer_id] = (epoch, header.last_sequence)
                    continue
                current_epoch, last_sequence = entry.epoch, entry.last_sequence
                if epoch == current_epoch:
                    duplicate = entry.find_duplicate(first, header.last_sequence)
                    if duplicate is not None:
                        return duplicate
            if epoch < current_epoch:
                raise KafkaApiError(
                    ErrorCode.INVALID_PRODUCER_EPOCH,
                    f"producer {producer_id} epoch {epoch} is older than the current epoch {current_epoch}",
                )
            if epoch > current_epoch:
                if first != 0:
                    raise KafkaApiError(
                        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                        f"producer {producer_id} new epoch {epoch} must start at sequence 0, not {first}",
                    )
            elif not in_sequence(last_sequence, first):
                raise KafkaApiError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {producer_id} epoch {epoch}: sequence {first} does not follow {last_sequence}",
                )
            pending[producer_id] = (epoch, header.last_sequence)
        return None

    def update(self, header: BatchHeader) -> int | None:
        """Record a stored batch (offsets assigned); also used to replay the log after a snapshot.
        For a marker (control batch) that closes an open transaction, returns the transaction's first
        offset; otherwise None."""
        producer_id = header.producer_id
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerEntry(header.producer_epoch)
        elif header.producer_epoch != entry.epoch:
            entry.epoch = header.producer_epoch
            entry.batches.clear()
        if header.max_timestamp > entry.last_timestamp:
            entry.last_timestamp = header.max_timestamp
        self.changed = True
        if header.is_control:  # transaction markers carry no sequence of their own
            first = entry.txn_first_offset
            if first < 0:
                return None
            entry.txn_first_offset = -1
            self.open_transactions.pop(producer_id, None)
            return first
        if header.is_transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = header.base_offset
            self.open_transactions[producer_id] = header.base_offset
        entry.batches.append(
            BatchMetadata(
                header.base_sequence,
                header.last_sequence,
                header.base_offset,
                header.base_offset + header.last_offset_delta,
                header.max_timestamp,
            )
        )
        return None

    # ----------------------------------------------------------------------------------------------
    # Snapshots

    def to_bytes(self) -> bytes:
        body = bytearray(_COUNT.pack(len(self.producers)))
        for producer_id, entry in self.producers.items():
            body += _PRODUCER.pack(
                producer_id, entry.epoch, entry.last_timestamp, entry.txn_first_offset, len(entry.batches)
            )
            for batch in entry.batches:
                body += _BATCH.pack(
                    batch.first_sequence,
                    batch.last_sequence,
                    batch.base_offset,
                    batch.last_offset,
                    batch.max_timestamp,
                )
        return _PREFIX.pack(_MAGIC, crc32c.crc32c(body)) + bytes(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> ProducerStateManager:
        """Parse a snapshot; ``ValueError`` if it is damaged in any way."""
        if len(data) < _PREFIX.size + _COUNT.size:
            raise ValueError("snapshot too short")
        magic, crc = _PREFIX.unpack_from(data, 0)
        body = memoryview(data)[_PREFIX.size :]
        if magic not in (_MAGIC, _MAGIC_V1) or crc32c.crc32c(body) != crc:
            raise ValueError("snapshot magic or CRC mismatch")
        state = cls()
        try:
            (count,) = _COUNT.unpack_from(body, 0)
            pos = _COUNT.size
            for _ in range(count):
                if magic == _MAGIC:
                    producer_id, epoch, last_timestamp, txn_first, n = _PRODUCER.unpack_from(body, pos)
                    pos += _PRODUCER.size
                else:
                    producer_id, epoch, last_timestamp, n = _PRODUCER_V1.unpack_from(body, pos)
                    pos += _PRODUCER_V1.size
                    txn_first = -1
                entry = ProducerEntry(epoch, last_timestamp=last_timestamp, txn_first_offset=txn_first)
                if txn_first >= 0:
                    state.open_transactions[producer_id] = txn_first
                for _ in range(n):
                    entry.batches.append(BatchMetadata(*_BATCH.unpack_from(body, pos)))
                    pos += _BATCH.size
                state.producers[producer_id] = entry
        except struct.error as exc:
            raise ValueError(f"snapshot truncated: {exc}") from None
        if pos != len(body):
            raise ValueError("snapshot has trailing bytes")
        return state


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"


def snapshot_offsets(directory: Path) -> list[int]:
    """Offsets of the snapshot files in ``directory``, ascending."""
    offsets = []
    for path in directory.glob(f"*{SNAPSHOT_SUFFIX}"):
        stem = path.name[: -len(SNAPSHOT_SUFFIX)]
        if stem.isdigit():
            offsets.append(int(stem))
    return sorted(offsets)


def write_snapshot(directory: Path, offset: int, state: ProducerStateManager, *, keep_from: int) -> None:
    """Atomically write the snapshot at ``offset``, then prune old ones.

    Kept: the newest ``SNAPSHOTS_KEPT``, plus the oldest at or above ``keep_from`` (the active
    segment's base offset, where the roll wrote one). Recovery only ever truncates inside the active
    segment, so that snapshot is always usable and replay never has to start from scratch.
    """
    write_file_atomically(snapshot_path(directory, offset), state.to_bytes())
    state.changed = False
    offsets = snapshot_offsets(directory)
    keep = set(offsets[-SNAPSHOTS_KEPT:])
    at_or_above = [o for o in offsets if o >= keep_from]
    if at_or_above:
        keep.add(at_or_above[0])
    for old in offsets:
        if old not in keep:
            with contextlib.suppress(FileNotFoundError):
                snapshot_path(directory, old).unlink()


def load_latest_snapshot(directory: Path, log_end_offset: int) -> tuple[int, ProducerStateManager] | None:
    """The newest readable snapshot at or below ``log_end_offset``.

    Snapshots above the log end describe batches that recovery truncated away, and damaged ones cannot
    be trusted: both are deleted.
    """
    for offset in reversed(snapshot_offsets(directory)):
        path = snapshot_path(directory, offset)
        if offset > log_end_offset:
            path.unlink(missing_ok=True)
            continue
        try:
            return offset, ProducerStateManager.from_bytes(path.read_bytes())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    return None
