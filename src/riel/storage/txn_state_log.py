"""Durable transaction-coordinator state: ``<data_dir>/transactions/state.log``.

Kafka keeps it in the compacted ``__transaction_state`` topic. Riel appends one line per change, the
whole new state of one transactional id as JSON, prefixed by the CRC-32C of that JSON in hex::

    1f3a9c0d {"id": "payments-1", "producer_id": 17, ...}

Reading replays the lines, the last one per id wins (a line with ``"deleted": true`` removes the id).
``write`` appends; ``sync`` makes everything appended so far durable (an fsync, which the broker runs
off its event loop and shares between the writes that are waiting: see ``TransactionDriver.durable``).
The coordinator acknowledges nothing, a commit decision included, before its state is synced, whatever
the broker's flush policy. Transactions are coarse (a few writes each), so this costs little next to
the data they cover.

Recovery: a torn or garbled last line (a crash mid-write) fails its CRC and is dropped with everything
after it, and the file is truncated there. When the file has grown to four times the size of the
live state (and at least ``COMPACT_MIN_BYTES``), it is rewritten with one line per live id
(tmp -> fsync -> rename -> fsync dir).

Not thread-safe: the broker calls it from its event-loop thread. ``OSError`` is raised as
``StorageError``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Final

import crc32c

from riel.errors import StorageError
from riel.storage.atomic_file import fsync_dir, write_file_atomically

log = logging.getLogger(__name__)

TXN_DIR: Final = "transactions"
STATE_FILE: Final = "state.log"
COMPACT_MIN_BYTES: Final = 1024 * 1024


def _line(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
    return b"%08x %s\n" % (crc32c.crc32c(body), body)


class TransactionStateLog:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / TXN_DIR / STATE_FILE
        self._fd = -1
        self._size = 0
        self.written = 0  # writes appended so far ...
        self.synced = 0  # ... and how many of them an fsync has covered
        self._fd_lock = threading.Lock()
        self._live: dict[str, bytes] = {}  # id -> its current line, for compaction

    def open(self) -> dict[str, dict[str, Any]]:
        """Replay the file; returns the state of every live transactional id."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        states: dict[str, dict[str, Any]] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
        good = 0
        for raw in data.splitlines(keepends=True):
            record = _parse(raw)
            if record is None:
                log.warning("%s: dropping a damaged record at byte %d and all after it", self.path, good)
                break
            good += len(raw)
            ident = record["id"]
            if record.get("deleted"):
                states.pop(ident, None)
                self._live.pop(ident, None)
            else:
                states[ident] = record
                self._live[ident] = raw
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            if good != len(data):
                os.ftruncate(self._fd, good)
                os.fsync(self._fd)
            fsync_dir(self.path.parent)
        except OSError as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        os.lseek(self._fd, good, os.SEEK_SET)
        self._size = good
        return states

    def write(self, record: dict[str, Any]) -> None:
        """Append the new state of ``record["id"]`` (durable after the next ``sync``)."""
        line = _line(record)
        try:
            os.write(self._fd, line)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc
        self.written += 1
        self._size += len(line)
        if record.get("deleted"):
            self._live.pop(record["id"], None)
        else:
            self._live[record["id"]] = line
        live = sum(len(line) for line in self._live.values())
        if self._size >= COMPACT_MIN_BYTES and self._size > 4 * live:
            self._compact()

    def sync(self) -> None:
        """fsync the file; may run on another thread while the owner appends (those appends are then
        covered or not, and stay counted as unsynced)."""
        with self._fd_lock:  # a compaction swaps the descriptor
            covered = self.written
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise StorageError(f"cannot fsync {self.path}: {exc}") from exc
            self.synced = max(self.synced, covered)

    def _compact(self) -> None:
        data = b"".join(self._live.values())
        with self._fd_lock:
            self._rewrite(data)

    def _rewrite(self, data: bytes) -> None:
        try:
            write_file_atomically(self.path, data)  # fsync'ed: every write so far is durable
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY)
            os.lseek(self._fd, len(data), os.SEEK_SET)
        except OSError as exc:
            raise StorageError(f"cannot compact {self.path}: {exc}") from exc
        self._size = len(data)
        self.synced = self.written

    def close(self) -> None:
        if self._fd >= 0:
            if self.synced < self.written:
                try:
                    os.fsync(self._fd)
                except OSError as exc:  # the next open replays what made it to the disk
                    log.error("%s: fsync at close failed: %s", self.path, exc)
            os.close(self._fd)
            self._fd = -1


def read_transaction_states(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The state of every live transactional id in ``data_dir``, read-only: the file is only read,
    never created, truncated or compacted, so this is safe next to a running server (whose appends are
    whole lines; a torn last line is ignored here, as ``open`` would drop it). ``{}`` when the file
    does not exist (no transactional producer ever used the directory)."""
    path = data_dir / TXN_DIR / STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    states: dict[str, dict[str, Any]] = {}
    for raw in data.splitlines(keepends=True):
        record = _parse(raw)
        if record is None:
            break  # damaged (or still being written): the rest does not count, as in ``open``
        if record.get("deleted"):
            states.pop(record["id"], None)
        else:
            states[record["id"]] = record
    return states


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n") or len(raw) < 10 or raw[8:9] != b" ":
        return None
    body = raw[9:-1]
    try:
        if int(raw[:8], 16) != crc32c.crc32c(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("id"), str) else None
