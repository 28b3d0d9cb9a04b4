"""Unlinking big files off the owner thread.

Deleting a 1 GiB segment can keep ``unlink`` busy for tens of milliseconds (the filesystem frees
every extent), which on the broker's event loop would stall every connection. So retention and
DeleteRecords only *rename* doomed segment files to ``*.deleted`` (fast, and fsync'ed with the
directory like any rename) and hand them to one background thread that unlinks them. Files it had
no time for (process exit, crash) are removed by the next open of their partition, as Kafka does
with its ``.deleted`` files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

DELETED_SUFFIX: Final = ".deleted"

_pending: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
_lock = threading.Lock()
_thread: threading.Thread | None = None
_idle = threading.Event()
_idle.set()


def retire(paths: Iterable[Path]) -> list[Path]:
    """Rename each existing file to ``<name>.deleted``; returns the new paths (for ``unlink_later``)."""
    renamed: list[Path] = []
    for path in paths:
        target = path.with_name(path.name + DELETED_SUFFIX)
        with contextlib.suppress(FileNotFoundError):
            path.rename(target)
            renamed.append(target)
    return renamed


def unlink_later(paths: Iterable[Path]) -> None:
    global _thread
    with _lock:
        for path in paths:
            _idle.clear()
            _pending.put(path)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="riel-file-reaper", daemon=True)
            _thread.start()


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until every file handed over so far is unlinked (tests)."""
    return _idle.wait(timeout)


def _run() -> None:
    while True:
        try:
            path = _pending.get(timeout=5.0)
        except queue.Empty:
            with _lock:  # exit when idle; unlink_later starts a new thread when needed
                if _pending.empty():
                    global _thread
                    _thread = None
                    return
            continue
        if path is None:
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("could not delete %s: %s (the next open of its partition retries)", path, exc)
        if _pending.empty():
            _idle.set()
