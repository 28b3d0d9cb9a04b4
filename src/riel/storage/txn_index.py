"""The aborted-transaction index of a segment: ``<base offset>.txnindex``.

One entry per transaction aborted by a marker in that segment, in Kafka's layout (34 bytes:
``version:int16 producer_id:int64 first_offset:int64 last_offset:int64 last_stable_offset:int64``).
``last_offset`` is the ABORT marker's offset. A read_committed Fetch returns the entries that overlap
the fetched range, and the consumer drops those producers' records from ``first_offset`` until it
meets the marker.

Recovery story: the index is derived from the log. At open, entries whose marker lies at or after the
offset the producer state is replayed from are dropped and rebuilt by the replay (which sees every
marker there); entries before it were written when their segment was sealed or the log closed
cleanly, both of which fsync the index. A torn last entry is ignored.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from riel.storage.atomic_file import write_file_atomically

TXN_INDEX_SUFFIX: Final = ".txnindex"
_ENTRY: Final = struct.Struct(">hqqqq")


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int  # the ABORT marker
    last_stable_offset: int  # the partition's LSO once this transaction was aborted

    def to_bytes(self) -> bytes:
        return _ENTRY.pack(0, self.producer_id, self.first_offset, self.last_offset, self.last_stable_offset)


def read_txn_index(path: Path) -> list[AbortedTxn]:
    """The entries of an index file (none if it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    whole = len(data) - len(data) % _ENTRY.size  # a torn last entry: rebuilt by recovery if needed
    return [AbortedTxn(*_ENTRY.unpack_from(data, pos)[1:]) for pos in range(0, whole, _ENTRY.size)]


def append_txn_index(path: Path, entry: AbortedTxn) -> None:
    with open(path, "ab") as file:
        file.write(entry.to_bytes())


def write_txn_index(path: Path, entries: list[AbortedTxn]) -> None:
    """Replace the index with ``entries`` (atomically); no file when there are none."""
    if entries:
        write_file_atomically(path, b"".join(entry.to_bytes() for entry in entries))
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def fsync_txn_index(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def merge_txn_indexes(target: Path, sources: list[Path]) -> None:
    """Put the entries of ``sources`` (which may include ``target``) into ``target``, in order, and
    delete the other sources: what a compaction that merges segments does with their indexes.
    Safe to repeat after a crash: entries already in ``target`` are not added twice."""
    merged: list[AbortedTxn] = []
    for source in sources:
        for entry in read_txn_index(source):
            if entry not in merged:
                merged.append(entry)
    if merged:
        merged.sort(key=lambda entry: entry.last_offset)
        write_txn_index(target, merged)
    for source in sources:
        if source != target:
            with contextlib.suppress(FileNotFoundError):
                source.unlink()
