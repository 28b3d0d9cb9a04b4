"""Walking a segment file batch by batch: recovery, index rebuilds and producer-state replay.

These run at open (or on a lazily detected bad index), never on the append/read path. They map the
file read-only and look only at batch headers, plus one CRC-32C pass per batch when ``verify_crc``.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import crc32c

from riel.records.batch_header import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    CURRENT_MAGIC,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    BatchHeader,
)
from riel.records.control import NOT_A_MARKER, marker_type

INT32_MAX: Final = 2**31 - 1


@dataclass(slots=True)
class SegmentScan:
    """What a walk over a segment found: the valid prefix and everything needed to index it."""

    valid_size: int = 0
    next_offset: int = 0
    index_entries: list[tuple[int, int]] = field(default_factory=list)  # (relative offset, position)
    time_entries: list[tuple[int, int]] = field(default_factory=list)  # (timestamp, relative offset)
    max_timestamp: int = -1
    offset_of_max_timestamp: int = -1  # base offset of the batch holding max_timestamp
    first_batch_timestamp: int | None = None
    bytes_since_index_entry: int = 0
    last_time_entry: int = -1  # timestamp of the last time-index entry, so entries stay increasing
    batches: int = 0
    error: str | None = None  # why the walk stopped before the end of the file, if it did


def scan_segment(
    path: Path,
    base_offset: int,
    index_interval: int,
    *,
    verify_crc: bool,
    file_size: int | None = None,
    resume: SegmentScan | None = None,
) -> SegmentScan:
    """Walk the batches of a segment file and stop at the first one that is torn or invalid.

    The walk starts at position 0, or continues the state in ``resume`` (its ``valid_size`` is the
    position of a batch boundary and ``next_offset`` the lowest offset allowed there).

    A batch is valid when its header lies inside the file with magic 2, a length covering the header
    and inside the file, a base offset at or above the previous batch's next offset (and relative
    offsets that fit an int32), and, with ``verify_crc``, a matching CRC-32C. Index entries are
    produced by the same rule as appends use, so a rebuilt index equals the one appends wrote.
    """
    size = os.path.getsize(path) if file_size is None else file_size
    scan = resume if resume is not None else SegmentScan(next_offset=base_offset)
    if size <= scan.valid_size:
        return scan
    with open(path, "rb") as file, mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as mapped:
        _walk(mapped, size, base_offset, index_interval, verify_crc, scan)
    return scan


def _walk(
    data: mmap.mmap, size: int, base_offset: int, index_interval: int, verify_crc: bool, scan: SegmentScan
) -> None:
    unpack = HEADER_STRUCT.unpack_from
    crc_of = crc32c.crc32c
    view = memoryview(data)
    try:
        pos = scan.valid_size
        expected = scan.next_offset
        since = scan.bytes_since_index_entry
        max_timestamp = scan.max_timestamp
        offset_of_max = scan.offset_of_max_timestamp
        last_time_entry = scan.last_time_entry
        while pos < size:
            if size - pos < BATCH_HEADER_SIZE:
                scan.error = f"torn batch header at position {pos} ({size - pos} bytes left)"
                break
            fields = unpack(data, pos)
            base, length, magic = fields[0], fields[1], fields[3]
            batch_size = length + LOG_OVERHEAD
            last_delta = fields[6]
            if magic != CURRENT_MAGIC:
                scan.error = f"batch at position {pos} has magic {magic}"
                break
            if length < MIN_BATCH_LENGTH or pos + batch_size > size:
                scan.error = f"batch at position {pos} claims length {length}: torn or garbage"
                break
            if base < expected or last_delta < 0 or base + last_delta - base_offset > INT32_MAX:
                scan.error = f"batch at {pos} has offsets {base}+{last_delta}, expected >= {expected}"
                break
            if verify_crc and crc_of(view[pos + ATTRIBUTES_OFFSET : pos + batch_size]) != fields[4]:
                scan.error = f"batch at position {pos} (offset {base}) fails its CRC"
                break
            batch_max = fields[8]
            if pos == 0:
                scan.first_batch_timestamp = batch_max
            if batch_max > max_timestamp:
                max_timestamp = batch_max
                offset_of_max = base
            if since > index_interval:
                scan.index_entries.append((base - base_offset, pos))
                if max_timestamp > last_time_entry:
                    scan.time_entries.append((max_timestamp, offset_of_max - base_offset))
                    last_time_entry = max_timestamp
                since = 0
            since += batch_size
            pos += batch_size
            expected = base + last_delta + 1
            scan.batches += 1
        scan.valid_size = pos
        scan.next_offset = expected
        scan.max_timestamp = max_timestamp
        scan.offset_of_max_timestamp = offset_of_max
        scan.bytes_since_index_entry = since
        scan.last_time_entry = last_time_entry
    finally:
        view.release()


def producer_batches(path: Path, start_position: int, end_position: int) -> list[tuple[BatchHeader, int]]:
    """The batches written by idempotent or transactional producers (producer id >= 0) between two
    batch boundaries of an already validated segment file, for rebuilding producer state: each
    header with its marker type (COMMIT/ABORT for a transaction marker, NOT_A_MARKER otherwise)."""
    if end_position <= start_position:
        return []
    batches: list[tuple[BatchHeader, int]] = []
    with open(path, "rb") as file, mmap.mmap(file.fileno(), end_position, access=mmap.ACCESS_READ) as mapped:
        pos = start_position
        while pos + BATCH_HEADER_SIZE <= end_position:
            fields = HEADER_STRUCT.unpack_from(mapped, pos)
            size = fields[1] + LOG_OVERHEAD
            if fields[9] >= 0:
                header = BatchHeader(*fields)
                kind = marker_type(mapped, pos, pos + size) if header.is_control else NOT_A_MARKER
                batches.append((header, kind))
            pos += size
    return batches
