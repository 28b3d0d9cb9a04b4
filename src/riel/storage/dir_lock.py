"""One process per data directory: an ``fcntl.flock`` on ``<data_dir>/.lock`` holding the owner's pid
and, optionally, a line saying what the owner is (``riel serve`` writes its address there, so a second
opener is told where to connect instead).

flock locks die with the process (kill -9 included), so a stale lock file never blocks a restart; the
pid inside only serves the error message. The file itself is never deleted: unlinking a lock file races
with a process that has just opened it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from riel.errors import DataDirLockedError

LOCK_FILE_NAME = ".lock"


class DataDirLock:
    """Exclusive, non-blocking lock of a data directory. Not thread-safe (one owner thread)."""

    def __init__(self, data_dir: Path, owner_note: str = "") -> None:
        self.path = data_dir / LOCK_FILE_NAME
        self.owner_note = owner_note
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``DataDirLockedError`` naming the pid that holds it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lines = os.pread(fd, 512, 0).decode("utf-8", "replace").splitlines()
            os.close(fd)
            owner = lines[0].strip() if lines and lines[0].strip() else "unknown"
            note = f": {lines[1].strip()}" if len(lines) > 1 and lines[1].strip() else ""
            raise DataDirLockedError(
                f"data directory {self.path.parent} is in use by process {owner}{note} "
                f"(lock file {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{self.owner_note}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
