"""The sparse time index of a segment (``.timeindex``): largest timestamp so far -> where it is.

On disk: 12-byte big-endian entries (int64 timestamp, int32 relative base offset of the batch that
holds that timestamp), written at the same index points as the offset index but only when the largest
timestamp grew, so timestamps are strictly increasing. When a segment is sealed (roll or close) a final
entry records the segment's overall largest timestamp, which makes ``last()`` the segment's maximum.

Lookup for a target timestamp T: every batch up to an entry's batch has timestamp <= the entry's, so
scanning can start at the batch of the last entry whose timestamp is < T.

Like the offset index it is a cache: validated on load, rebuilt from the log when wrong.
"""

from __future__ import annotations

import bisect
import operator
import struct
from array import array
from pathlib import Path
from typing import Final

from riel.storage.index_file import IndexFile

ENTRY: Final = struct.Struct(">qi")
ENTRY_SIZE: Final = ENTRY.size
NO_TIMESTAMP: Final = -1


class TimeIndex(IndexFile):
    """Not thread-safe: one event-loop thread owns every storage object."""

    __slots__ = ("relative_offsets", "timestamps")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.timestamps: array[int] = array("q")
        self.relative_offsets: array[int] = array("i")

    @classmethod
    def load(cls, path: Path) -> TimeIndex | None:
        """The index in ``path``, or None when it is missing, unreadable or not whole entries."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if len(data) % ENTRY_SIZE:
            return None
        index = cls(path)
        for timestamp, relative in ENTRY.iter_unpack(data):
            index.timestamps.append(timestamp)
            index.relative_offsets.append(relative)
        return index

    @classmethod
    def from_entries(cls, path: Path, entries: list[tuple[int, int]]) -> TimeIndex:
        index = cls(path)
        index.timestamps = array("q", [timestamp for timestamp, _ in entries])
        index.relative_offsets = array("i", [relative for _, relative in entries])
        return index

    def __len__(self) -> int:
        return len(self.timestamps)

    def is_consistent(self, relative_end: int) -> bool:
        """Timestamps strictly increasing, offsets non-decreasing and below ``relative_end``."""
        timestamps, offsets = self.timestamps, self.relative_offsets
        if not timestamps:
            return True
        if offsets[0] < 0 or offsets[-1] >= relative_end:
            return False
        increasing = all(map(operator.lt, timestamps, timestamps[1:]))
        return increasing and all(map(operator.le, offsets, offsets[1:]))

    def last(self) -> tuple[int, int] | None:
        """(timestamp, relative offset) of the last entry."""
        if not self.timestamps:
            return None
        return self.timestamps[-1], self.relative_offsets[-1]

    def last_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else NO_TIMESTAMP

    def start_for(self, timestamp: int) -> int:
        """Relative offset from which to scan for the first batch with max timestamp >= ``timestamp``."""
        i = bisect.bisect_left(self.timestamps, timestamp) - 1
        return self.relative_offsets[i] if i >= 0 else 0

    def maybe_add(self, timestamp: int, relative_offset: int) -> None:
        """Append an entry if ``timestamp`` is larger than the last one (keeps timestamps increasing)."""
        if self.timestamps and timestamp <= self.timestamps[-1]:
            return
        if timestamp < 0:
            return
        self.timestamps.append(timestamp)
        self.relative_offsets.append(relative_offset)
        self._pending += ENTRY.pack(timestamp, relative_offset)

    def encoded(self) -> bytes:
        return b"".join(ENTRY.pack(t, r) for t, r in zip(self.timestamps, self.relative_offsets, strict=True))
