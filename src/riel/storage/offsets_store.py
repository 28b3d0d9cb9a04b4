"""Committed consumer-group offsets: an append-only journal plus an occasional snapshot.

Kafka keeps committed offsets in the compacted ``__consumer_offsets`` topic. Riel keeps the same facts
in a smaller structure with the same promises: an acknowledged commit survives a crash (per the
broker's flush policy, exactly like produced data), one OffsetCommit request is applied whole or not
at all, and the files do not grow without bound.

Layout, in ``<data_dir>/group-offsets/``::

    snapshot          every live offset, replaced atomically (tmp -> fsync -> rename -> fsync dir)
    journal-<epoch>   changes made since that snapshot, appended; <epoch> is the snapshot's epoch

Both files are sequences of *frames*: ``length:u32 crc32c:u32 payload``, where the payload is one or
more operations (``COMMIT``, ``DELETE_OFFSET``, ``DELETE_GROUP``). One store call writes one frame, so
a request's operations are atomic: a frame either passes its CRC and is applied whole, or is not
applied. The snapshot starts with a header (magic, format version, epoch).

Recovery (``open``): load the snapshot, replay ``journal-<epoch>``, and truncate the journal at the
first frame that is incomplete (a torn write), fails its CRC, or does not parse; everything after such
a frame is dropped and logged. Journals of other epochs are leftovers of an interrupted compaction
(the snapshot already contains them) and are removed. A damaged snapshot is a ``StorageError``: it is
only ever replaced atomically, so damage means the disk lied, and guessing would silently resurrect
or lose offsets.

Compaction (when the journal has grown past ``compact_min_bytes`` and twice the last snapshot): write a
snapshot of epoch N+1, create ``journal-<N+1>``, delete ``journal-<N>``. A crash at any point leaves
either the old snapshot with its complete journal or the new snapshot (with or without its empty
journal).

Not thread-safe: the broker calls it from its event-loop thread. ``OSError`` from the disk is raised
as ``StorageError``; the in-memory state is changed only after the write succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import crc32c

from riel.config import FlushPolicy
from riel.errors import StorageError
from riel.storage.atomic_file import fsync_dir, write_file_atomically

log = logging.getLogger(__name__)

OFFSETS_DIR: Final = "group-offsets"
SNAPSHOT_FILE: Final = "snapshot"
JOURNAL_PREFIX: Final = "journal-"
COMPACT_MIN_BYTES: Final = 4 * 1024 * 1024

_SNAPSHOT_MAGIC: Final = b"RGOS"
_FORMAT_VERSION: Final = 1
_SNAPSHOT_HEADER: Final = struct.Struct(">4sHQ")  # magic, format version, epoch
_FRAME_HEADER: Final = struct.Struct(">II")  # payload length, CRC-32C of the payload
_MAX_FRAME: Final = 256 * 1024 * 1024  # far above any real frame: a larger length is garbage

_OP_COMMIT: Final = 1
_OP_DELETE_OFFSET: Final = 2
_OP_DELETE_GROUP: Final = 3
_COMMIT_FIELDS: Final = struct.Struct(">iqiqq")  # partition, offset, leader epoch, commit ts, expire ts
_PARTITION: Final = struct.Struct(">i")
_U16: Final = struct.Struct(">H")
_I32: Final = struct.Struct(">i")
_JOURNAL_NAME: Final = re.compile(r"journal-(\d+)")

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp_ms: int = 0
    expire_timestamp_ms: int | None = None  # OffsetCommit v2-4 retention_time_ms; None: group-based


class _Corrupt(Exception):
    """A frame payload that does not parse (internal to recovery)."""


# ------------------------------------------------------------------------------------------ encoding


def _put_str(out: bytearray, value: str) -> None:
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise ValueError(f"name of {len(raw)} bytes is too long to store")
    out += _U16.pack(len(raw))
    out += raw


def _encode_commit(out: bytearray, group: str, tp: TopicPartition, c: CommittedOffset) -> None:
    out.append(_OP_COMMIT)
    _put_str(out, group)
    _put_str(out, tp[0])
    out += _COMMIT_FIELDS.pack(
        tp[1],
        c.offset,
        c.leader_epoch,
        c.commit_timestamp_ms,
        -1 if c.expire_timestamp_ms is None else c.expire_timestamp_ms,
    )
    metadata = c.metadata.encode()
    out += _I32.pack(len(metadata))
    out += metadata


def _encode_delete_offset(out: bytearray, group: str, tp: TopicPartition) -> None:
    out.append(_OP_DELETE_OFFSET)
    _put_str(out, group)
    _put_str(out, tp[0])
    out += _PARTITION.pack(tp[1])


def _encode_delete_group(out: bytearray, group: str) -> None:
    out.append(_OP_DELETE_GROUP)
    _put_str(out, group)


def _frame(payload: bytes | bytearray) -> bytes:
    return _FRAME_HEADER.pack(len(payload), crc32c.crc32c(payload)) + bytes(payload)


class _Cursor:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _Corrupt(f"field of {n} bytes runs past the end of the frame")
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def string(self) -> str:
        (n,) = _U16.unpack(self.take(2))
        try:
            return str(self.take(n), "utf-8")
        except UnicodeDecodeError as exc:
            raise _Corrupt(str(exc)) from None


Op = tuple[int, str, TopicPartition | None, CommittedOffset | None]


def _decode_ops(payload: memoryview) -> list[Op]:
    cur = _Cursor(payload)
    ops: list[Op] = []
    while cur.pos < len(payload):
        kind = cur.take(1)[0]
        group = cur.string()
        if kind == _OP_COMMIT:
            topic = cur.string()
            partition, offset, epoch, commit_ts, expire_ts = _COMMIT_FIELDS.unpack(
                cur.take(_COMMIT_FIELDS.size)
            )
            (length,) = _I32.unpack(cur.take(4))
            try:
                metadata = str(cur.take(length), "utf-8")
            except UnicodeDecodeError as exc:
                raise _Corrupt(str(exc)) from None
            committed = CommittedOffset(
                offset, epoch, metadata, commit_ts, None if expire_ts < 0 else expire_ts
            )
            ops.append((kind, group, (topic, partition), committed))
        elif kind == _OP_DELETE_OFFSET:
            topic = cur.string()
            (partition,) = _PARTITION.unpack(cur.take(4))
            ops.append((kind, group, (topic, partition), None))
        elif kind == _OP_DELETE_GROUP:
            ops.append((kind, group, None, None))
        else:
            raise _Corrupt(f"unknown operation {kind}")
    return ops


def _frames(data: memoryview, start: int) -> Iterator[tuple[int, list[Op] | None]]:
    """(end position, operations) per frame; operations None marks the first bad frame (then stop)."""
    pos = start
    while pos < len(data):
        if pos + _FRAME_HEADER.size > len(data):
            yield pos, None
            return
        length, crc = _FRAME_HEADER.unpack_from(data, pos)
        body_start = pos + _FRAME_HEADER.size
        if length > _MAX_FRAME or body_start + length > len(data):
            yield pos, None
            return
        payload = data[body_start : body_start + length]
        if crc32c.crc32c(payload) != crc:
            yield pos, None
            return
        try:
            ops = _decode_ops(payload)
        except (_Corrupt, struct.error):
            yield pos, None
            return
        pos = body_start + length
        yield pos, ops


# ------------------------------------------------------------------------------------------- store


class OffsetsStore:
    """Committed offsets per group, durable per ``flush`` (see the module docstring for the format)."""

    def __init__(
        self, data_dir: Path, flush: FlushPolicy, *, compact_min_bytes: int = COMPACT_MIN_BYTES
    ) -> None:
        self.directory = Path(data_dir) / OFFSETS_DIR
        self.flush_policy = flush
        self.compact_min_bytes = compact_min_bytes
        self._offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._epoch = 0
        self._journal_fd: int | None = None
        self._journal_bytes = 0
        self._snapshot_bytes = 0
        self._unflushed_ops = 0
        self._last_flush_ms: int | None = None
        self.truncated_bytes = 0  # how much the last open() cut off a damaged journal (for tests/logs)

    # --------------------------------------------------------------------------------- lifecycle

    def open(self) -> None:
        """Load the snapshot, replay the journal (truncating a torn or damaged tail)."""
        if self._journal_fd is not None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._load_snapshot()
            self._remove_stale_journals()
            path = self._journal_path(self._epoch)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                self._journal_bytes = self._replay_journal(fd, path)
                os.lseek(fd, self._journal_bytes, os.SEEK_SET)
            except BaseException:
                os.close(fd)
                raise
            self._journal_fd = fd
            fsync_dir(self.directory)
        except OSError as exc:
            raise StorageError(f"opening the group offsets in {self.directory} failed: {exc}") from exc

    def close(self) -> None:
        if self._journal_fd is None:
            return
        fd, self._journal_fd = self._journal_fd, None
        try:
            if self.flush_policy.name != "os" or self._unflushed_ops:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _journal_path(self, epoch: int) -> Path:
        return self.directory / f"{JOURNAL_PREFIX}{epoch}"

    def _load_snapshot(self) -> None:
        path = self.directory / SNAPSHOT_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self._epoch = 0
            self._snapshot_bytes = 0
            return
        data = memoryview(raw)
        if len(data) < _SNAPSHOT_HEADER.size:
            raise StorageError(f"{path} is truncated; restore it from a backup or remove it")
        magic, version, epoch = _SNAPSHOT_HEADER.unpack_from(data, 0)
        if magic != _SNAPSHOT_MAGIC or version != _FORMAT_VERSION:
            raise StorageError(f"{path} is not a Riel offsets snapshot (magic {magic!r}, version {version})")
        end = _SNAPSHOT_HEADER.size
        for end, ops in _frames(data, _SNAPSHOT_HEADER.size):
            if ops is None:
                raise StorageError(f"{path} is damaged at byte {end}; restore it from a backup or remove it")
            self._apply(ops)
        self._epoch = epoch
        self._snapshot_bytes = len(raw)

    def _remove_stale_journals(self) -> None:
        for entry in os.scandir(self.directory):
            match = _JOURNAL_NAME.fullmatch(entry.name)
            stale = match is not None and int(match.group(1)) != self._epoch
            if stale or entry.name.endswith(".tmp"):
                log.info("removing %s left over from an interrupted compaction", entry.path)
                os.unlink(entry.path)

    def _replay_journal(self, fd: int, path: Path) -> int:
        size = os.fstat(fd).st_size
        raw = os.pread(fd, size, 0) if size else b""
        good = 0
        for end, ops in _frames(memoryview(raw), 0):
            if ops is None:
                break
            self._apply(ops)
            good = end
        if good < size:
            # Kafka's log recovery does the same: keep the valid prefix, drop the rest. A torn tail is
            # a write that was never acknowledged; damage in the middle loses the commits after it.
            log.warning(
                "%s: dropping %d bytes after byte %d (torn or damaged frame)", path, size - good, good
            )
            os.ftruncate(fd, good)
            os.fsync(fd)
        self.truncated_bytes = size - good
        return good

    def _apply(self, ops: Iterable[Op]) -> None:
        for kind, group, tp, committed in ops:
            if kind == _OP_COMMIT:
                assert tp is not None and committed is not None
                self._offsets.setdefault(group, {})[tp] = committed
            elif kind == _OP_DELETE_OFFSET:
                assert tp is not None
                offsets = self._offsets.get(group)
                if offsets is not None:
                    offsets.pop(tp, None)
                    if not offsets:
                        del self._offsets[group]
            else:
                self._offsets.pop(group, None)

    # ----------------------------------------------------------------------------------- queries

    def groups(self) -> list[str]:
        """Groups that have at least one committed offset."""
        return list(self._offsets)

    def group_offsets(self, group: str) -> dict[TopicPartition, CommittedOffset]:
        """A copy of the group's committed offsets."""
        return dict(self._offsets.get(group, {}))

    def get(self, group: str, tp: TopicPartition) -> CommittedOffset | None:
        return self._offsets.get(group, {}).get(tp)

    # ----------------------------------------------------------------------------------- changes

    def commit(self, group: str, offsets: dict[TopicPartition, CommittedOffset], now_ms: int) -> None:
        """Store all of ``offsets`` atomically; durable per the flush policy when this returns."""
        if not offsets:
            return
        payload = bytearray()
        for tp, committed in offsets.items():
            _encode_commit(payload, group, tp, committed)
        self._write(payload, len(offsets), now_ms)
        self._offsets.setdefault(group, {}).update(offsets)
        self._maybe_compact()

    def delete_offsets(self, group: str, partitions: Iterable[TopicPartition], now_ms: int) -> None:
        existing = self._offsets.get(group, {})
        doomed = [tp for tp in partitions if tp in existing]
        if not doomed:
            return
        payload = bytearray()
        for tp in doomed:
            _encode_delete_offset(payload, group, tp)
        self._write(payload, len(doomed), now_ms)
        self._apply((_OP_DELETE_OFFSET, group, tp, None) for tp in doomed)
        self._maybe_compact()

    def delete_topic_offsets(self, topic: str, now_ms: int) -> None:
        """Forget every group's offsets of ``topic`` (it was deleted), atomically: a topic created
        later under the same name must not be read from the old topic's positions."""
        payload = bytearray()
        doomed: list[tuple[str, TopicPartition]] = []
        for group, offsets in self._offsets.items():
            for tp in offsets:
                if tp[0] == topic:
                    _encode_delete_offset(payload, group, tp)
                    doomed.append((group, tp))
        if not doomed:
            return
        self._write(payload, len(doomed), now_ms)
        self._apply((_OP_DELETE_OFFSET, group, tp, None) for group, tp in doomed)
        self._maybe_compact()

    def delete_group(self, group: str, now_ms: int) -> None:
        if group not in self._offsets:
            return
        payload = bytearray()
        _encode_delete_group(payload, group)
        self._write(payload, 1, now_ms)
        del self._offsets[group]
        self._maybe_compact()

    def _write(self, payload: bytearray, ops: int, now_ms: int) -> None:
        fd = self._journal_fd
        if fd is None:
            raise StorageError("the group offsets store is not open")
        frame = _frame(payload)
        try:
            view = memoryview(frame)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            # Cut off whatever part of the frame reached the file, so the next frame is not appended
            # after garbage (recovery would drop it).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._journal_bytes)
                os.lseek(fd, self._journal_bytes, os.SEEK_SET)
            raise StorageError(f"writing group offsets failed: {exc}") from exc
        self._journal_bytes += len(frame)
        self._unflushed_ops += ops
        if self._last_flush_ms is None:
            self._last_flush_ms = now_ms
        policy = self.flush_policy
        if policy.name == "always" or (policy.name == "interval" and self._unflushed_ops >= policy.messages):
            self.flush(now_ms)

    def flush(self, now_ms: int | None = None) -> None:
        fd = self._journal_fd
        if fd is None or not self._unflushed_ops:
            return
        try:
            os.fdatasync(fd)
        except OSError as exc:
            raise StorageError(f"fsync of group offsets failed: {exc}") from exc
        self._unflushed_ops = 0
        self._last_flush_ms = now_ms

    def next_flush_ms(self) -> int | None:
        """When ``flush_if_due`` has work to do (interval policy with unflushed commits), else None."""
        if self.flush_policy.name != "interval" or not self._unflushed_ops or self._last_flush_ms is None:
            return None
        return self._last_flush_ms + self.flush_policy.ms

    def flush_if_due(self, now_ms: int) -> None:
        due = self.next_flush_ms()
        if due is not None and now_ms >= due:
            self.flush(now_ms)

    # -------------------------------------------------------------------------------- compaction

    def _maybe_compact(self) -> None:
        if self._journal_bytes >= self.compact_min_bytes and self._journal_bytes >= 2 * self._snapshot_bytes:
            self.compact()

    def compact(self) -> None:
        """Fold the journal into a new snapshot and start an empty journal."""
        if self._journal_fd is None:
            raise StorageError("the group offsets store is not open")
        new_epoch = self._epoch + 1
        out = bytearray(_SNAPSHOT_HEADER.pack(_SNAPSHOT_MAGIC, _FORMAT_VERSION, new_epoch))
        for group, offsets in self._offsets.items():
            payload = bytearray()
            for tp, committed in offsets.items():
                _encode_commit(payload, group, tp, committed)
            out += _frame(payload)
        old_fd, old_path = self._journal_fd, self._journal_path(self._epoch)
        new_path = self._journal_path(new_epoch)
        try:
            write_file_atomically(self.directory / SNAPSHOT_FILE, bytes(out))
            new_fd = os.open(new_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            fsync_dir(self.directory)
        except OSError as exc:
            raise StorageError(f"compacting group offsets failed: {exc}") from exc
        self._journal_fd = new_fd
        self._epoch = new_epoch
        self._journal_bytes = 0
        self._snapshot_bytes = len(out)
        self._unflushed_ops = 0  # everything is in the fsync'ed snapshot now
        os.close(old_fd)
        with contextlib.suppress(OSError):
            os.unlink(old_path)
            fsync_dir(self.directory)

    @property
    def journal_bytes(self) -> int:
        return self._journal_bytes

    @property
    def epoch(self) -> int:
        return self._epoch
