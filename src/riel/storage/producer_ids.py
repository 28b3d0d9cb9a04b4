"""Producer ids that never repeat, even across restarts.

A reused producer id would collide with the idempotence state kept for its previous owner, so ids are
handed out from blocks whose upper end is persisted (atomically) before any id of the block is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from riel.storage.atomic_file import write_file_atomically

BLOCK_SIZE: Final = 1000


class ProducerIdAllocator:
    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._next = int(path.read_text().strip() or "0")
        except FileNotFoundError:
            self._next = 0
        self._block_end = self._next  # nothing reserved yet in this process

    def allocate(self) -> int:
        if self._next >= self._block_end:
            self._block_end = self._next + BLOCK_SIZE
            write_file_atomically(self._path, str(self._block_end).encode())
        pid = self._next
        self._next += 1
        return pid
