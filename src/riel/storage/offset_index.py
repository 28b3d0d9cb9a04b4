"""The sparse offset index of a segment (``.index``): batch base offset -> file position.

On disk: 8-byte big-endian entries (offset relative to the segment's base offset, int32 position), one
per ``index.interval.bytes`` of log, appended as the log grows. In memory: two ``array('i')`` columns,
so lookups are a C-level ``bisect``. Entries always point at the start of a batch whose base offset is
the entry's offset, which is what makes a floor lookup a safe place to start scanning headers.

The file is a cache: it is validated on load (``is_consistent``) and rebuilt from the log when it is
missing or wrong, so it is never fsync'ed on the append path, only when its segment is sealed.
"""

from __future__ import annotations

import bisect
import operator
import sys
from array import array
from pathlib import Path
from typing import Final

from riel.storage.index_file import IndexFile

ENTRY_SIZE: Final = 8
_NATIVE_IS_BIG: Final = sys.byteorder == "big"


def _pairs_to_bytes(first: array[int], second: array[int]) -> bytes:
    interleaved = array("i", [0]) * (2 * len(first))
    interleaved[0::2] = first
    interleaved[1::2] = second
    if not _NATIVE_IS_BIG:
        interleaved.byteswap()
    return interleaved.tobytes()


class OffsetIndex(IndexFile):
    """Not thread-safe: one event-loop thread owns every storage object."""

    __slots__ = ("positions", "relative_offsets")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.relative_offsets: array[int] = array("i")
        self.positions: array[int] = array("i")

    @classmethod
    def load(cls, path: Path) -> OffsetIndex | None:
        """The index in ``path``, or None when it is missing, unreadable or not whole entries."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if len(data) % ENTRY_SIZE:
            return None
        interleaved = array("i")
        interleaved.frombytes(data)
        if not _NATIVE_IS_BIG:
            interleaved.byteswap()
        index = cls(path)
        index.relative_offsets = interleaved[0::2]
        index.positions = interleaved[1::2]
        return index

    @classmethod
    def from_entries(cls, path: Path, entries: list[tuple[int, int]]) -> OffsetIndex:
        index = cls(path)
        index.relative_offsets = array("i", [relative for relative, _ in entries])
        index.positions = array("i", [position for _, position in entries])
        return index

    def __len__(self) -> int:
        return len(self.positions)

    def is_consistent(self, log_size: int) -> bool:
        """Offsets and positions strictly increasing, positions inside the log file."""
        offsets, positions = self.relative_offsets, self.positions
        if not positions:
            return True
        if offsets[0] < 0 or positions[0] < 0 or positions[-1] >= log_size:
            return False
        # map(operator...) keeps the pairwise comparison in C: these arrays can hold 250k entries.
        return all(map(operator.lt, offsets, offsets[1:])) and all(map(operator.lt, positions, positions[1:]))

    def lookup(self, relative_offset: int) -> tuple[int, int]:
        """(relative offset, position) of the last entry at or before ``relative_offset``; (0, 0) if none."""
        i = bisect.bisect_right(self.relative_offsets, relative_offset) - 1
        if i < 0:
            return 0, 0
        return self.relative_offsets[i], self.positions[i]

    def floor_position(self, position: int) -> int:
        """The last indexed batch position at or before ``position`` (0 = the first batch)."""
        i = bisect.bisect_right(self.positions, position) - 1
        return self.positions[i] if i >= 0 else 0

    def last(self) -> tuple[int, int] | None:
        if not self.positions:
            return None
        return self.relative_offsets[-1], self.positions[-1]

    def add(self, relative_offset: int, position: int) -> None:
        """Append an entry in memory; ``write_pending`` puts it in the file."""
        self.relative_offsets.append(relative_offset)
        self.positions.append(position)
        self._pending += relative_offset.to_bytes(4, "big", signed=True)
        self._pending += position.to_bytes(4, "big", signed=True)

    def encoded(self) -> bytes:
        return _pairs_to_bytes(self.relative_offsets, self.positions)
