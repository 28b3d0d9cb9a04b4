"""The embedded publisher: publish() queues, a writer thread appends and fsyncs in batches.

Like a Kafka producer, ``publish`` only adds the message to an open batch for its partition and
returns a future. The writer thread seals a batch once it is ``batch_bytes`` big or ``linger_ms`` old
(or on ``flush``), encodes it, appends it to the partition log, and, under the ``always`` flush
policy, fsyncs every partition it touched once for all the batches it just wrote (a group commit)
before resolving their futures. So a future resolves only when its message is as durable as the
policy promises, and the publishing thread never waits for a disk.

Memory is bounded: past ``buffer_bytes`` of queued messages, ``publish`` blocks until the writer
catches up (Kafka's buffer.memory / max.block.ms; here without a time limit).
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from riel.client.api import Header, Published
from riel.errors import ErrorCode, KafkaApiError, PublishError, StorageError
from riel.records.batch import frame_batch
from riel.records.errors import InvalidRecordError
from riel.records.fast_records import encode_records

if TYPE_CHECKING:
    from riel.client.embedded import EmbeddedLog

log = logging.getLogger(__name__)

RECORD_OVERHEAD = 24  # generous per-record bytes beyond key+value: varints, attributes, headers count
TICK_S = 0.2  # how often the writer runs the storage's periodic work (interval flushes, checkpoints)

Item = tuple[bytes | None, bytes | None, Sequence[Header] | None, int]


class Batch:
    """Messages for one partition, appended together as one record batch."""

    __slots__ = (
        "base_offset",
        "callbacks",
        "created",
        "done",
        "error",
        "items",
        "log_append_time",
        "partition",
        "size",
        "topic",
    )

    def __init__(self, topic: str, partition: int, created: float) -> None:
        self.topic = topic
        self.partition = partition
        self.created = created
        self.items: list[Item] = []
        self.size = 0
        self.base_offset = -1
        self.log_append_time = -1
        self.done = False
        self.error: BaseException | None = None
        self.callbacks: list[Callable[[], object]] | None = None

    def published(self, index: int) -> Published:
        timestamp = self.log_append_time if self.log_append_time >= 0 else self.items[index][3]
        return Published(self.topic, self.partition, self.base_offset + index, timestamp)


class PublishFutureBase:
    """Shared waiting logic of the two future kinds (one message, or a publish_many call)."""

    __slots__ = ("_writer",)

    _writer: Writer

    def _batches(self) -> list[Batch]:
        raise NotImplementedError

    def done(self) -> bool:
        return all(batch.done for batch in self._batches())

    def _wait(self, timeout: float | None) -> None:
        batches = self._batches()
        with self._writer.acked:
            if not self._writer.acked.wait_for(lambda: all(b.done for b in batches), timeout):
                raise TimeoutError(f"the message was not acknowledged within {timeout} s")
        for batch in batches:
            if batch.error is not None:
                raise batch.error

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            self._wait(timeout)
        except TimeoutError:
            raise
        except BaseException as exc:
            return exc
        return None

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        """``fn(future)`` once acknowledged or failed: at once if already done, else on the writer
        thread (keep it short, as with Kafka's delivery callbacks)."""
        pending = [b for b in self._batches() if not b.done]
        if not pending:
            fn(self)
            return
        remaining = [len(pending)]

        def one_done() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                fn(self)

        with self._writer.acked:
            late = [b for b in pending if b.done]
            for batch in pending:
                if not batch.done:
                    if batch.callbacks is None:
                        batch.callbacks = []
                    batch.callbacks.append(one_done)
        for _ in late:
            one_done()


class EmbeddedPublishFuture(PublishFutureBase):
    __slots__ = ("_batch", "_index")

    def __init__(self, writer: Writer, batch: Batch, index: int) -> None:
        self._writer = writer
        self._batch = batch
        self._index = index

    def _batches(self) -> list[Batch]:
        return [self._batch]

    def done(self) -> bool:
        return self._batch.done

    def result(self, timeout: float | None = None) -> Published:
        if not self._batch.done or self._batch.error is not None:
            self._wait(timeout)
        return self._batch.published(self._index)


class EmbeddedManyFuture(PublishFutureBase):
    __slots__ = ("_parts",)

    def __init__(self, writer: Writer, parts: list[tuple[Batch, int, int]]) -> None:
        self._writer = writer
        self._parts = parts  # (batch, first index, end index) in publishing order

    def _batches(self) -> list[Batch]:
        return [batch for batch, _, _ in self._parts]

    def result(self, timeout: float | None = None) -> list[Published]:
        self._wait(timeout)
        return [batch.published(i) for batch, start, end in self._parts for i in range(start, end)]


class Writer:
    """Open batches per partition, and the thread that writes them."""

    def __init__(
        self, log: EmbeddedLog, *, linger_ms: float, batch_bytes: int, buffer_bytes: int, flush_always: bool
    ) -> None:
        self._log = log
        self._linger_s = linger_ms / 1000
        self.batch_bytes = batch_bytes
        self._buffer_bytes = buffer_bytes
        self._flush_always = flush_always
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self.acked = threading.Condition(threading.Lock())
        self.open_batches: dict[tuple[str, int], Batch] = {}
        self._ready: list[Batch] = []
        self._unfinished: set[Batch] = set()
        self._buffered = 0
        self._flush_now = False
        self._stopping = False
        self._callbacks = CallbackRunner()
        self._thread = threading.Thread(target=self._run, name="riel-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------ publishing side

    def _wait_for_space(self) -> None:
        """Block (under ``_lock``) while the buffer is full; raise once the log is closing."""
        while self._buffered > self._buffer_bytes and not self._stopping:
            # A full buffer is a reason to send now, as in Kafka: don't wait out the linger time.
            self._flush_now = True
            self._wakeup.notify()
            self._space.wait()
        if self._stopping:
            raise RuntimeError("the event log is closed")

    def add(self, topic: str, partition: int, item: Item, size: int, limit: int) -> tuple[Batch, int]:
        """Queue one message in a batch of at most ``limit`` bytes (the smaller of ``batch_bytes`` and
        the topic's max.message.bytes); returns its batch and index. Blocks while the buffer is full."""
        key = (topic, partition)
        with self._lock:
            self._wait_for_space()
            batch = self.open_batches.get(key)
            if batch is not None and batch.size + size > limit:
                self._seal(key, batch)
                batch = None
            if batch is None:
                batch = self._new_batch(topic, partition)
            index = len(batch.items)
            batch.items.append(item)
            batch.size += size
            self._buffered += size
            return batch, index

    def add_many(
        self, topic: str, partition: int, items: list[Item], ends: list[int], limit: int
    ) -> list[tuple[Batch, int, int]]:
        """Queue many messages for one partition, in batches of at most ``limit`` bytes; ``ends[i]`` is
        the total size of items 0..i (running sums let batch boundaries be found by bisection instead
        of a Python loop per message). Returns (batch, start, end) slices in order."""
        key = (topic, partition)
        parts: list[tuple[Batch, int, int]] = []
        with self._lock:
            i = 0
            n = len(items)
            while i < n:
                self._wait_for_space()
                batch = self.open_batches.get(key)
                before = ends[i - 1] if i else 0
                if batch is not None and batch.size + ends[i] - before > limit:
                    self._seal(key, batch)
                    batch = None
                if batch is None:
                    batch = self._new_batch(topic, partition)
                # Fill up to the limit, at least one message (each one fits the limit on its own).
                j = max(i + 1, bisect.bisect_right(ends, before + limit - batch.size, i))
                start = len(batch.items)
                batch.items += items[i:j]
                added = ends[j - 1] - before
                batch.size += added
                self._buffered += added
                parts.append((batch, start, len(batch.items)))
                i = j
        return parts

    def _new_batch(self, topic: str, partition: int) -> Batch:
        batch = Batch(topic, partition, time.monotonic())
        if not self.open_batches:
            self._wakeup.notify()  # the writer may be sleeping with no linger deadline
        self.open_batches[(topic, partition)] = batch
        self._unfinished.add(batch)
        return batch

    def _seal(self, key: tuple[str, int], batch: Batch) -> None:
        del self.open_batches[key]
        self._ready.append(batch)
        self._wakeup.notify()

    def wait_all(self, timeout: float | None) -> list[Batch]:
        """Send everything queued now and wait until it is acknowledged or failed; returns those
        batches. ``TimeoutError`` if that takes longer than ``timeout`` seconds."""
        with self._lock:
            pending = list(self._unfinished)
            self._flush_now = True
            self._wakeup.notify()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.acked:
            for batch in pending:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self.acked.wait_for(lambda b=batch: b.done, left):  # type: ignore[misc]
                    raise TimeoutError(f"messages were still unacknowledged after {timeout} s")
        return pending

    def flush(self, timeout: float | None) -> None:
        """``wait_all``, then raise the first failure among those messages (``PublishError``)."""
        for batch in self.wait_all(timeout):
            if batch.error is not None:
                raise PublishError(
                    getattr(batch.error, "code", ErrorCode.UNKNOWN_SERVER_ERROR),
                    f"publishing to {batch.topic}-{batch.partition} failed: {batch.error}",
                )

    def close(self) -> None:
        """Write and acknowledge everything queued, then stop the threads. Safe to call twice or from
        several threads: every caller returns only once the writer is done."""
        with self._lock:
            self._stopping = True
            self._wakeup.notify()
            self._space.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self._callbacks.close()

    # --------------------------------------------------------------------------------- writer thread

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug: fail what is queued rather than leave futures hanging
            log.exception("the riel writer thread failed")
            with self._lock:
                self._stopping = True
                batches = list(self._unfinished)
                self.open_batches.clear()
                self._ready.clear()
                self._space.notify_all()
            for batch in batches:
                batch.error = PublishError(
                    ErrorCode.UNKNOWN_SERVER_ERROR, f"the writer thread failed: {exc!r}"
                )
            self._finish(batches)
            raise

    def _loop(self) -> None:
        last_tick = time.monotonic()
        while True:
            with self._lock:
                batches = self._take_ready()
                while not batches and not self._stopping:
                    self._wakeup.wait(self._sleep_time(last_tick))
                    batches = self._take_ready()
                    if time.monotonic() - last_tick >= TICK_S:
                        break
                stopping = self._stopping
                if stopping:
                    batches += self._take_all()
            if batches:
                self._write(batches)
            if time.monotonic() - last_tick >= TICK_S or stopping:
                last_tick = time.monotonic()
                try:
                    self._log.tick()
                except Exception:
                    log.exception("periodic storage work failed")
            if stopping:
                with self._lock:
                    leftovers = self._take_all()
                if not leftovers:
                    return
                self._write(leftovers)

    def _sleep_time(self, last_tick: float) -> float:
        now = time.monotonic()
        wake = last_tick + TICK_S
        if self.open_batches:
            oldest = min(batch.created for batch in self.open_batches.values())
            wake = min(wake, oldest + self._linger_s)
        return max(0.0, wake - now)

    def _take_ready(self) -> list[Batch]:
        """Sealed batches plus open ones past their linger time (all of them when flushing)."""
        now = time.monotonic()
        flush_all = self._flush_now
        self._flush_now = False
        for key, batch in list(self.open_batches.items()):
            if flush_all or now - batch.created >= self._linger_s:
                del self.open_batches[key]
                self._ready.append(batch)
        ready, self._ready = self._ready, []
        return ready

    def _take_all(self) -> list[Batch]:
        self._flush_now = True
        return self._take_ready()

    def _write(self, batches: list[Batch]) -> None:
        """Encode, append, (group-)fsync, acknowledge. Never raises: failures go to the futures."""
        frames: list[tuple[Batch, bytearray | None]] = []
        for batch in batches:
            try:
                items = batch.items
                base_timestamp = items[0][3]
                section, max_timestamp = encode_records(items, base_timestamp)
                frames.append((batch, frame_batch(section, len(items), base_timestamp, max_timestamp)))
            except Exception as exc:
                batch.error = PublishError(ErrorCode.INVALID_RECORD, f"cannot encode the message: {exc}")
                frames.append((batch, None))
        try:
            self._log.append_batches(frames, self._flush_always)
        except Exception as exc:
            log.exception("appending published batches failed")
            for batch in batches:
                if batch.error is None and batch.base_offset < 0:
                    batch.error = append_error(exc)
        self._finish(batches)

    def _finish(self, batches: list[Batch]) -> None:
        """Release the batches' buffer space, mark them done, wake waiters, queue their callbacks."""
        released = sum(batch.size for batch in batches)
        with self._lock:
            self._buffered -= released
            self._unfinished.difference_update(batches)
            self._space.notify_all()
        callbacks: list[Callable[[], object]] = []
        with self.acked:
            for batch in batches:
                batch.done = True
                if batch.callbacks:
                    callbacks += batch.callbacks
            self.acked.notify_all()
        if callbacks:
            self._callbacks.submit(callbacks)


class CallbackRunner:
    """Runs publish callbacks on a thread of their own, started on first use, so a callback that
    publishes, flushes or waits for a result cannot block the writer that would make progress."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[list[Callable[[], object]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, callbacks: list[Callable[[], object]]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="riel-callbacks", daemon=True)
                self._thread.start()
        self._queue.put(callbacks)

    def _run(self) -> None:
        while (callbacks := self._queue.get()) is not None:
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("a publish callback raised")

    def close(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._queue.put(None)
            thread.join()


def append_error(exc: BaseException) -> PublishError:
    """The exception a batch's futures raise for an append failure."""
    if isinstance(exc, KafkaApiError | InvalidRecordError):
        return PublishError(exc.code, exc.message)
    if isinstance(exc, StorageError):
        return PublishError(ErrorCode.KAFKA_STORAGE_ERROR, f"the disk failed: {exc}")
    return PublishError(ErrorCode.UNKNOWN_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
