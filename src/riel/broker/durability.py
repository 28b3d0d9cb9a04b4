"""Group commit: produce requests wait for an fsync that runs off the event loop and is shared.

Under the ``always`` flush policy a produce may only be acknowledged once its data is on disk. Doing
the fsync inline would freeze every connection for its duration; instead one fsync per partition runs
on a worker thread, and every request whose data it covers waits for it. Requests that arrive while
it runs are covered by the next one, so under load many requests share each fsync.
"""

from __future__ import annotations

import asyncio
import contextlib

from riel.errors import StorageError
from riel.storage.partition_log import PartitionLog, PendingFlush


class GroupCommit:
    def __init__(self) -> None:
        # Per partition log: a future resolved once the running fsync's outcome is recorded.
        self._in_flight: dict[int, asyncio.Future[None]] = {}

    async def wait_durable(self, plog: PartitionLog, offset: int) -> None:
        """Return once every record up to and including ``offset`` is fsync'ed; StorageError if not."""
        key = id(plog)
        while plog.recovery_point <= offset:
            running = self._in_flight.get(key)
            if running is None:
                pending = plog.prepare_flush()  # raises StorageError once an fsync has failed
                if pending is None:
                    return
                running = asyncio.get_running_loop().create_future()
                self._in_flight[key] = running
                # A task of its own, so that a waiter being cancelled (its client went away) cannot
                # cancel the fsync that other waiters depend on.
                asyncio.get_running_loop().create_task(self._flush(key, plog, pending, running))
            await asyncio.shield(running)

    async def _flush(
        self, key: int, plog: PartitionLog, pending: PendingFlush, done: asyncio.Future[None]
    ) -> None:
        error: OSError | None = None
        try:
            await asyncio.get_running_loop().run_in_executor(None, pending.run)
        except OSError as exc:
            error = exc
        finally:
            del self._in_flight[key]
        with contextlib.suppress(StorageError):  # recorded on the log: the next prepare_flush raises it
            plog.complete_flush(pending, error)
        done.set_result(None)
