"""Small files that must be either the old or the new version after a crash, never a torn mix."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    """Make renames, creations and deletions inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomically(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """tmp -> fsync -> rename -> fsync dir, so a reader (or a recovery) sees the old or the new content.

    ``sync_dir=False`` skips the directory fsync when the caller fsyncs the directory itself after
    several renames (the rename is still atomic, just not yet durable).
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def write_all(fd: int, data: bytes | bytearray | memoryview, position: int) -> None:
    """pwrite every byte of ``data`` at ``position`` (a regular file may still accept a short write)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        if written <= 0:
            raise OSError(f"pwrite wrote {written} bytes")
        view = view[written:]
        position += written
