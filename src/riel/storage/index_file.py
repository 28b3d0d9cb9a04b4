"""What the offset and time indexes share: an append-only cache file that may be lost or wrong.

An index file is never trusted blindly (it is validated on load and rebuilt from the log), so writing
it must never fail a log append: a failed write marks the file ``broken`` and it is rewritten whole
when its segment is sealed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from riel.storage.atomic_file import write_file_atomically


class IndexFile:
    """Not thread-safe: one event-loop thread owns every storage object."""

    __slots__ = ("_pending", "broken", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending = bytearray()  # entries added in memory, not yet written to the file
        self.broken = False  # a write failed: the file must be rewritten before it can be trusted

    def encoded(self) -> bytes:
        """Every in-memory entry in the file format (for ``rewrite``)."""
        raise NotImplementedError

    def write_pending(self) -> None:
        """One append-write for all entries added since the last call. A failure marks the file broken
        instead of failing the log append that already succeeded: the file is a rebuildable cache."""
        if not self._pending or self.broken:
            self._pending.clear()
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, self._pending)
            finally:
                os.close(fd)
        except OSError:
            self.broken = True
        self._pending.clear()

    def rewrite(self) -> None:
        """Replace the file with exactly the in-memory entries (after a rebuild or a failed write)."""
        self._pending.clear()
        write_file_atomically(self.path, self.encoded(), sync_dir=False)
        self.broken = False

    def sync(self) -> None:
        """fsync the file (when its segment is sealed); a broken file is rewritten instead."""
        self.write_pending()
        if self.broken:
            with contextlib.suppress(OSError):
                self.rewrite()
            return
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
