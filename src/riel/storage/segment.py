"""One log segment: ``<base offset>.log`` with its ``.index``, ``.timeindex`` and ``.chain``.

The ``.log`` file is record batches stored verbatim, back to back; the segment's name is the 20-digit
base offset of its first batch (Kafka's layout). The active (last) segment of a partition is appended
to; the others are sealed: never written again, their index files fsync'ed when they were sealed and
loaded lazily (validated, rebuilt if wrong) the first time a read needs them.

The active segment also holds the open writer of its hash chain (``hash_chain.py``): each append
chains the new batches right after writing them, and sealing fsyncs the chain with the log.

Reads never parse records: a floor lookup in the offset index gives a batch boundary at or before
the wanted offset, and the walk from there reads only the 27 leading bytes of each batch header.

Not thread-safe: a single event-loop thread owns every storage object.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from pathlib import Path
from typing import Final

from riel.errors import StorageError
from riel.records.batch_header import BATCH_HEADER_SIZE, HEADER_STRUCT, LOG_OVERHEAD, BatchHeader
from riel.storage.atomic_file import write_all
from riel.storage.file_reaper import retire
from riel.storage.hash_chain import CHAIN_SUFFIX, ChainWriter
from riel.storage.log_scan import SegmentScan, scan_segment
from riel.storage.offset_index import OffsetIndex
from riel.storage.time_index import TimeIndex
from riel.storage.txn_index import TXN_INDEX_SUFFIX

log = logging.getLogger(__name__)

LOG_SUFFIX: Final = ".log"
INDEX_SUFFIX: Final = ".index"
TIME_INDEX_SUFFIX: Final = ".timeindex"

# baseOffset, batchLength, (partitionLeaderEpoch, magic, crc, attributes skipped), lastOffsetDelta.
_OFFSETS_HEADER: Final = struct.Struct(">qi11xi")
# Bytes read per pread while walking headers: one default index interval, so a floor lookup followed
# by a walk usually costs a single system call.
_READ_WINDOW: Final = 4096 + _OFFSETS_HEADER.size


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """A segment file and its two sparse indexes.

    ``size`` and ``next_offset`` always describe the whole, valid batches in the file (the partition
    log guarantees it: appends write whole batches and recovery truncates torn ones).
    """

    __slots__ = (
        "_fd",
        "_offset_index",
        "_time_index",
        "base_offset",
        "bytes_since_index_entry",
        "chain",
        "chain_path",
        "created_ms",
        "first_batch_timestamp",
        "index_interval",
        "index_path",
        "log_path",
        "max_timestamp",
        "next_offset",
        "offset_of_max_timestamp",
        "size",
        "time_index_path",
        "txn_index_path",
    )

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        *,
        size: int,
        next_offset: int,
        created_ms: int,
        index_interval: int,
    ) -> None:
        self.base_offset = base_offset
        self.log_path = directory / segment_file_name(base_offset, LOG_SUFFIX)
        self.index_path = directory / segment_file_name(base_offset, INDEX_SUFFIX)
        self.time_index_path = directory / segment_file_name(base_offset, TIME_INDEX_SUFFIX)
        self.chain_path = directory / segment_file_name(base_offset, CHAIN_SUFFIX)
        # Aborted transactions whose marker is in this segment (kept by PartitionLog, see txn_index.py).
        self.txn_index_path = directory / segment_file_name(base_offset, TXN_INDEX_SUFFIX)
        self.chain: ChainWriter | None = None  # the active segment's; None for sealed ones
        self.size = size
        self.next_offset = next_offset
        self.created_ms = created_ms
        self.index_interval = index_interval
        self._fd = -1
        self._offset_index: OffsetIndex | None = None
        self._time_index: TimeIndex | None = None
        # Valid once the indexes are loaded (always for the active segment).
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.first_batch_timestamp: int | None = None  # for segment.ms (Kafka: first batch's max ts)
        self.bytes_since_index_entry = 0

    # ----------------------------------------------------------------------------------------------
    # Opening

    @classmethod
    def create(
        cls,
        directory: Path,
        base_offset: int,
        *,
        now_ms: int,
        index_interval: int,
        anchor: bytes | None = None,
    ) -> LogSegment:
        """A new empty segment (leftover files with the same name are emptied); with ``anchor``, also
        its chain file, starting from that hash."""
        segment = cls(
            directory,
            base_offset,
            size=0,
            next_offset=base_offset,
            created_ms=now_ms,
            index_interval=index_interval,
        )
        segment._fd = os.open(segment.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        for path in (segment.index_path, segment.time_index_path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        segment._offset_index = OffsetIndex(segment.index_path)
        segment._time_index = TimeIndex(segment.time_index_path)
        if anchor is not None:
            try:
                segment.chain = ChainWriter.create(segment.chain_path, anchor)
            except BaseException:
                segment.close()
                raise
        return segment

    @classmethod
    def recover(
        cls, directory: Path, base_offset: int, *, now_ms: int, index_interval: int
    ) -> tuple[LogSegment, SegmentScan]:
        """Validate every batch (CRC included), truncate at the first bad one, rebuild both indexes.

        The recovered file is fsync'ed, so the caller may count it as flushed.
        """
        segment = cls(
            directory,
            base_offset,
            size=0,
            next_offset=base_offset,
            created_ms=now_ms,
            index_interval=index_interval,
        )
        scan = scan_segment(segment.log_path, base_offset, index_interval, verify_crc=True)
        segment._fd = os.open(segment.log_path, os.O_RDWR)
        if scan.error is not None:
            os.ftruncate(segment._fd, scan.valid_size)
        os.fsync(segment._fd)
        segment._install_scan(scan)
        return segment, scan

    @classmethod
    def open_sealed(
        cls, directory: Path, base_offset: int, *, next_offset: int, now_ms: int, index_interval: int
    ) -> LogSegment:
        """A sealed segment; nothing is read until a lookup needs it."""
        segment = cls(
            directory,
            base_offset,
            size=0,
            next_offset=next_offset,
            created_ms=now_ms,
            index_interval=index_interval,
        )
        segment.size = os.path.getsize(segment.log_path)
        return segment

    @classmethod
    def open_after_clean_shutdown(
        cls, directory: Path, base_offset: int, *, now_ms: int, index_interval: int
    ) -> LogSegment | None:
        """The active segment of a cleanly closed log, checked cheaply: indexes valid and every batch
        after the last index entry whole with a matching CRC. None when anything is off, so the caller
        runs a full recovery of the segment."""
        segment = cls(
            directory,
            base_offset,
            size=0,
            next_offset=base_offset,
            created_ms=now_ms,
            index_interval=index_interval,
        )
        size = os.path.getsize(segment.log_path)
        offset_index = OffsetIndex.load(segment.index_path)
        time_index = TimeIndex.load(segment.time_index_path)
        if offset_index is None or time_index is None or not offset_index.is_consistent(size):
            return None
        segment.size = size
        segment._fd = os.open(segment.log_path, os.O_RDWR)
        last_entry = offset_index.last()
        resume = SegmentScan(valid_size=0, next_offset=base_offset)
        if last_entry is not None:
            relative, position = last_entry
            # Resume the walk at the last indexed batch: the index-point state there is "0 bytes since".
            resume.valid_size = position
            resume.next_offset = base_offset + relative
        last_time = time_index.last()
        if last_time is not None:
            resume.max_timestamp = resume.last_time_entry = last_time[0]
            resume.offset_of_max_timestamp = base_offset + last_time[1]
        # The tail after the last index entry is at most about one index interval plus one batch, so
        # checking its CRCs is cheap, and it is where a torn or foreign write would be.
        scan = scan_segment(
            segment.log_path, base_offset, index_interval, verify_crc=True, file_size=size, resume=resume
        )
        if scan.error is not None or (last_entry is not None and scan.batches == 0):
            segment.close()
            return None
        if last_entry is not None and segment._read_offsets(last_entry[1])[0] != base_offset + last_entry[0]:
            segment.close()
            return None
        if not time_index.is_consistent(scan.next_offset - base_offset):
            segment.close()
            return None
        for relative, position in scan.index_entries:
            offset_index.add(relative, position)
        for timestamp, relative in scan.time_entries:
            time_index.maybe_add(timestamp, relative)
        offset_index.write_pending()
        time_index.write_pending()
        segment._offset_index = offset_index
        segment._time_index = time_index
        segment.next_offset = scan.next_offset
        segment.max_timestamp = scan.max_timestamp
        segment.offset_of_max_timestamp = scan.offset_of_max_timestamp
        segment.bytes_since_index_entry = scan.bytes_since_index_entry
        if size:
            segment.first_batch_timestamp = segment.read_header(0).max_timestamp
        return segment

    def _install_scan(self, scan: SegmentScan) -> None:
        """Adopt a scan's result as this segment's state and rewrite both index files from it."""
        self.size = scan.valid_size
        self.next_offset = scan.next_offset
        self.max_timestamp = scan.max_timestamp
        self.offset_of_max_timestamp = scan.offset_of_max_timestamp
        self.first_batch_timestamp = scan.first_batch_timestamp
        self.bytes_since_index_entry = scan.bytes_since_index_entry
        offset_index = OffsetIndex.from_entries(self.index_path, scan.index_entries)
        time_index = TimeIndex.from_entries(self.time_index_path, scan.time_entries)
        if scan.max_timestamp >= 0:
            time_index.maybe_add(scan.max_timestamp, scan.offset_of_max_timestamp - self.base_offset)
        for index in (offset_index, time_index):
            try:
                index.rewrite()
            except OSError:
                index.broken = True  # still correct in memory; rewritten again when sealed
        self._offset_index = offset_index
        self._time_index = time_index

    # ----------------------------------------------------------------------------------------------
    # Lazy state of sealed segments

    @property
    def fd(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.log_path, os.O_RDONLY)
        return self._fd

    @property
    def offset_index(self) -> OffsetIndex:
        if self._offset_index is None:
            self._load_indexes()
        assert self._offset_index is not None
        return self._offset_index

    @property
    def time_index(self) -> TimeIndex:
        if self._time_index is None:
            self._load_indexes()
        assert self._time_index is not None
        return self._time_index

    def _load_indexes(self) -> None:
        """Load and validate a sealed segment's indexes; rebuild both from the log if either is wrong."""
        offset_index = OffsetIndex.load(self.index_path)
        time_index = TimeIndex.load(self.time_index_path)
        valid = (
            offset_index is not None
            and time_index is not None
            and offset_index.is_consistent(self.size)
            and time_index.is_consistent(self.next_offset - self.base_offset)
            and self._entry_is_batch_start(offset_index.last())
        )
        if offset_index is not None and time_index is not None and valid:
            self._offset_index = offset_index
            self._time_index = time_index
            last = time_index.last()
            if last is not None:
                self.max_timestamp = last[0]
                self.offset_of_max_timestamp = self.base_offset + last[1]
            return
        scan = scan_segment(
            self.log_path, self.base_offset, self.index_interval, verify_crc=False, file_size=self.size
        )
        size, next_offset = self.size, self.next_offset
        self._install_scan(scan)
        # A sealed segment keeps the extent the log assigned it, even if its middle turned out damaged.
        self.size, self.next_offset = size, max(next_offset, scan.next_offset)

    def _entry_is_batch_start(self, entry: tuple[int, int] | None) -> bool:
        if entry is None:
            return True
        relative, position = entry
        base, length, _ = self._read_offsets(position)
        return base == self.base_offset + relative and position + length + LOG_OVERHEAD <= self.size

    def largest_timestamp(self) -> tuple[int, int]:
        """(max timestamp, base offset of the batch holding it); (-1, -1) for an empty segment."""
        if self._time_index is None:
            self._load_indexes()
        return self.max_timestamp, self.offset_of_max_timestamp

    # ----------------------------------------------------------------------------------------------
    # Appending (active segment only)

    def append(self, data: bytes | bytearray | memoryview, headers: list[BatchHeader]) -> None:
        """Write whole batches (offsets already assigned) and index them.

        On a write error the file is cut back to its previous size, so it never holds a partial
        append, and ``StorageError`` is raised; if even that fails the caller must take the log offline.
        """
        start = self.size
        try:
            write_all(self.fd, data, start)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, start)  # the caller checks file_matches_size() to see if it worked
            raise StorageError(f"write to {self.log_path} failed: {exc}") from exc
        base_offset = self.base_offset
        offset_index = self.offset_index
        time_index = self.time_index
        interval = self.index_interval
        since = self.bytes_since_index_entry
        max_timestamp = self.max_timestamp
        offset_of_max = self.offset_of_max_timestamp
        position = start
        if start == 0:
            self.first_batch_timestamp = headers[0].max_timestamp
        for header in headers:
            if header.max_timestamp > max_timestamp:
                max_timestamp = header.max_timestamp
                offset_of_max = header.base_offset
            if since > interval:
                offset_index.add(header.base_offset - base_offset, position)
                time_index.maybe_add(max_timestamp, offset_of_max - base_offset)
                since = 0
            batch_size = header.batch_length + LOG_OVERHEAD
            since += batch_size
            position += batch_size
        offset_index.write_pending()
        time_index.write_pending()
        self.bytes_since_index_entry = since
        self.max_timestamp = max_timestamp
        self.offset_of_max_timestamp = offset_of_max
        self.size = position
        self.next_offset = headers[-1].base_offset + headers[-1].last_offset_delta + 1
        chain = self.chain
        if chain is not None:
            try:
                chain.append(data, headers, start)
            except OSError as exc:
                # The batches are stored and acknowledged; the chain stops here until the log is
                # reopened, which chains the missing batches from the file.
                log.error("%s: chain write failed (%s); the chain resumes at the next open", chain.path, exc)
                chain.close()
                self.chain = None

    def file_matches_size(self) -> bool:
        """Whether the file holds exactly the bytes this segment accounts for (checked after a failure)."""
        try:
            return os.fstat(self.fd).st_size == self.size
        except OSError:
            return False

    def flush(self) -> None:
        """fdatasync the log file (its indexes are caches, synced only when sealed)."""
        os.fdatasync(self.fd)

    def seal(self) -> None:
        """Make the segment immutable and self-describing: record its largest timestamp in the time index,
        then fsync the log and both indexes (after this, recovery may trust them)."""
        time_index = self.time_index
        if self.max_timestamp >= 0:
            time_index.maybe_add(self.max_timestamp, self.offset_of_max_timestamp - self.base_offset)
        self.offset_index.sync()
        time_index.sync()
        if self.chain is not None:
            self.chain.sync()
        os.fdatasync(self.fd)

    # ----------------------------------------------------------------------------------------------
    # Reading

    def _read_offsets(self, position: int) -> tuple[int, int, int]:
        """(base offset, batch length, last offset delta) of the batch at ``position``."""
        data = os.pread(self.fd, _OFFSETS_HEADER.size, position)
        if len(data) < _OFFSETS_HEADER.size:
            return -1, -1, -1
        base, length, last_delta = _OFFSETS_HEADER.unpack(data)
        return base, length, last_delta

    def read_header(self, position: int) -> BatchHeader:
        data = os.pread(self.fd, BATCH_HEADER_SIZE, position)
        if len(data) < BATCH_HEADER_SIZE:
            raise StorageError(f"{self.log_path} ends inside the batch header at position {position}")
        return BatchHeader(*HEADER_STRUCT.unpack(data))

    def read_bytes(self, position: int, size: int) -> bytes:
        data = os.pread(self.fd, size, position)
        if len(data) != size:
            raise StorageError(f"{self.log_path} ends inside the batch at position {position}")
        return data

    def find_batch(self, offset: int) -> tuple[int, int] | None:
        """(position, size) of the first batch whose last offset is >= ``offset``; None if none here."""
        _, position = self.offset_index.lookup(offset - self.base_offset)
        end = self.size
        fd = self.fd
        unpack = _OFFSETS_HEADER.unpack_from
        header_size = _OFFSETS_HEADER.size
        window = b""
        window_start = position
        while position < end:
            if position + header_size > window_start + len(window):
                window = os.pread(fd, min(_READ_WINDOW, end - position), position)
                window_start = position
                if len(window) < header_size:
                    raise StorageError(f"{self.log_path} ends inside a batch header at position {position}")
            base, length, last_delta = unpack(window, position - window_start)
            batch_size = length + LOG_OVERHEAD
            if base + last_delta >= offset:
                return position, batch_size
            position += batch_size
        return None

    def end_of_whole_batches(self, start: int, limit: int) -> tuple[int, int]:
        """(position, next offset): the last batch boundary <= ``limit`` walking from the batch boundary
        ``start``, and the offset that follows the batches before it (the last one's last offset + 1, or
        the base offset of the batch at the boundary when compaction left a gap). Costs at most one pread
        more than finding the boundary alone (when it falls exactly on ``limit`` and no batch was
        walked over)."""
        if limit >= self.size:
            return self.size, self.next_offset
        position = max(start, self.offset_index.floor_position(limit))
        fd = self.fd
        unpack = _OFFSETS_HEADER.unpack_from
        header_size = _OFFSETS_HEADER.size
        window = b""
        window_start = position
        next_offset = -1
        while position < limit:
            if position + header_size > window_start + len(window):
                window = os.pread(fd, min(_READ_WINDOW, self.size - position), position)
                window_start = position
                if len(window) < header_size:
                    raise StorageError(f"{self.log_path} ends inside a batch header at position {position}")
            base, length, last_delta = unpack(window, position - window_start)
            if position + length + LOG_OVERHEAD > limit:
                return position, base
            position += length + LOG_OVERHEAD
            next_offset = base + last_delta + 1
        if next_offset < 0:  # the boundary is exactly ``limit`` (< size): the batch there comes next
            next_offset = self._read_offsets(position)[0]
            if next_offset < 0:
                raise StorageError(f"{self.log_path} ends inside a batch header at position {position}")
        return position, next_offset

    def find_by_timestamp(self, timestamp: int, min_offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch with max timestamp >= ``timestamp`` and last offset
        >= ``min_offset``; None if this segment has none."""
        start_relative = max(self.time_index.start_for(timestamp), min_offset - self.base_offset)
        _, position = self.offset_index.lookup(start_relative)
        while position < self.size:
            header = self.read_header(position)
            if header.max_timestamp >= timestamp and header.last_offset >= min_offset:
                return position, header
            position += header.size
        return None

    def position_of(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the batch containing or following ``offset``."""
        found = self.find_batch(offset)
        if found is None:
            return None
        return found[0], self.read_header(found[0])

    # ----------------------------------------------------------------------------------------------
    # Lifecycle

    def close(self) -> None:
        if self.chain is not None:
            self.chain.close()
            self.chain = None
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def delete(self) -> None:
        """Close and unlink the segment's files. Readers holding a FileSlice keep their own descriptor."""
        self.close()
        for path in self.files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def retire(self) -> list[Path]:
        """Close and rename the segment's files to ``*.deleted`` for ``file_reaper.unlink_later``."""
        self.close()
        return retire(self.files())

    def files(self) -> tuple[Path, ...]:
        return (self.log_path, self.index_path, self.time_index_path, self.chain_path, self.txn_index_path)

    def __repr__(self) -> str:
        return f"LogSegment(base={self.base_offset}, next={self.next_offset}, size={self.size})"
