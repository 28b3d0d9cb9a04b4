"""A byte range of a segment file that the server sends with ``os.sendfile``, without copying it."""

from __future__ import annotations

import contextlib
import os
from types import TracebackType

from riel.errors import StorageError
from riel.protocol.primitives import ExternalBytes


class FileSlice(ExternalBytes):
    """``size`` bytes at ``position`` of an open file, owned through a private duplicate descriptor.

    The constructor ``os.dup``s the given descriptor, so the slice stays readable even if the segment
    is closed, deleted (retention, DeleteRecords) or truncated meanwhile (truncation would show up as
    a short read). **The caller must call** ``close()`` (or use ``with``) once the bytes are sent;
    a forgotten slice is closed by the garbage collector as a last resort.
    """

    __slots__ = ("fd", "position")

    def __init__(self, fd: int, position: int, size: int) -> None:
        super().__init__(size)
        self.position = position
        self.fd = os.dup(fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def read_bytes(self) -> bytes:
        """The slice's content (pread, for callers that cannot sendfile: TLS, tests, embedded use)."""
        if self.fd < 0:
            raise ValueError("read from a closed FileSlice")
        chunks: list[bytes] = []
        position = self.position
        remaining = self.size
        while remaining:
            chunk = os.pread(self.fd, remaining, position)
            if not chunk:
                raise StorageError(f"segment file ends {remaining} bytes short of the slice being read")
            chunks.append(chunk)
            position += len(chunk)
            remaining -= len(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]

    def close(self) -> None:
        """Release the descriptor; idempotent."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        return f"FileSlice(fd={self.fd}, position={self.position}, size={self.size})"
