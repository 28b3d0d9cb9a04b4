"""``riel.open(path)``: the event log inside this Python process, on the same storage as ``riel serve``.

One process owns a data directory at a time (``DataDirLockedError`` names the owner otherwise; a
running server is reached with ``riel.connect`` instead). Everything ``riel serve`` stores (topics,
configs, messages, committed group offsets) is in the same files, so a directory written embedded can
be served later, and the other way round.

Threads: the ``EmbeddedLog`` is thread-safe; one re-entrant lock guards the storage, and a writer
thread appends and fsyncs published batches (see ``embedded_writer``). Consumers wait on a condition
that appends, fsyncs and group changes signal.

Durability follows the flush policy, as for the server: under ``always`` (the default for a directory)
a publish future resolves only after its message was fsync'ed, and consumers only see fsync'ed
messages; under ``interval``/``os`` it resolves once the message is in the OS page cache (it survives
a crash of this process, not of the machine). ``":memory:"`` uses a private temporary directory (on
``/dev/shm`` when there is one) with the ``os`` policy, removed at ``close``.
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any

from riel.client.api import (
    EventLog,
    Header,
    Message,
    Published,
    PublishFuture,
    StartPosition,
    TopicDescription,
    TopicPartition,
    When,
    normalise_headers,
    subscription_topics,
    to_millis,
)
from riel.client.codecs import BytesCodec, Codec, CodecSpec, make_codec
from riel.client.embedded_consumer import EmbeddedConsumer
from riel.client.embedded_group import DEFAULT_MAX_POLL_INTERVAL_MS, EmbeddedGroup
from riel.client.embedded_reader import decode_messages, decode_with, read_raw
from riel.client.embedded_writer import (
    RECORD_OVERHEAD,
    Batch,
    EmbeddedManyFuture,
    EmbeddedPublishFuture,
    Item,
    Writer,
    append_error,
)
from riel.client.partitioner import partition_for_key
from riel.clock import wall_clock_ms
from riel.config import FlushPolicy
from riel.errors import (
    DataDirLockedError,
    ErrorCode,
    KafkaApiError,
    PublishError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from riel.storage.log_config import LogConfig
from riel.storage.log_manager import LogManager
from riel.storage.offsets_store import CommittedOffset, OffsetsStore
from riel.storage.partition_log import PartitionLog

MEMORY = ":memory:"
MAX_RECORD_SLACK = 128  # bytes kept free below max.message.bytes for the batch header and varints
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _memory_dir() -> Path:
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="riel-memory-", dir=parent))


class EmbeddedLog(EventLog):
    """An ``EventLog`` on a local data directory. Create with ``riel.open(path)``.

    Settings: ``flush_policy`` ("always", "os" or "interval:MESSAGES:MS"); ``default_partitions`` for
    topics created on first use; ``topic_config`` defaults for new topics (Kafka names such as
    ``retention.ms``); ``linger_ms``/``batch_bytes``/``buffer_bytes`` as a Kafka producer's linger.ms,
    batch.size and buffer.memory; ``max_poll_interval_ms`` as Kafka's.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        flush_policy: str | FlushPolicy | None = None,
        value_codec: CodecSpec | None = None,
        key_codec: CodecSpec | None = None,
        default_partitions: int = 1,
        topic_config: dict[str, str] | None = None,
        linger_ms: float = 5.0,
        batch_bytes: int = 256 * 1024,
        buffer_bytes: int = 64 * 1024 * 1024,
        max_poll_interval_ms: int = DEFAULT_MAX_POLL_INTERVAL_MS,
    ) -> None:
        in_memory = str(path) == MEMORY
        self._temp_dir = _memory_dir() if in_memory else None
        self.path = self._temp_dir if self._temp_dir is not None else Path(path)
        if flush_policy is None:
            flush_policy = "os" if in_memory else "always"
        policy = FlushPolicy.parse(flush_policy) if isinstance(flush_policy, str) else flush_policy
        self.flush_policy = policy
        self.value_codec: Codec = make_codec(value_codec)
        self.key_codec: Codec = make_codec(key_codec)
        self._bytes_values = isinstance(self.value_codec, BytesCodec)
        self.default_partitions = default_partitions
        self.max_poll_interval_ms = max_poll_interval_ms
        self.lock = threading.RLock()
        self._close_lock = threading.Lock()
        self.data_changed = threading.Condition(self.lock)
        self.data_version = 0  # bumped (under lock) whenever consumers may have something new to see
        self.metadata_version = 0  # bumped when topics appear or disappear
        self._logs = LogManager(self.path, policy, topic_config or {})
        try:
            self._logs.open()
        except DataDirLockedError as exc:
            self._remove_temp_dir()
            raise DataDirLockedError(
                f"{exc}. A data directory belongs to one process at a time: connect to the server that "
                "owns it with riel.connect, or stop that process before opening the directory here"
            ) from None
        self._offsets = OffsetsStore(self.path, policy)
        try:
            self._offsets.open()
        except BaseException:
            self._logs.close(clean=False)
            self._remove_temp_dir()
            raise
        self._counts = {name: info.partitions for name, info in self._logs.topics().items()}
        self._max_record = {name: self._record_limit(name) for name in self._counts}
        self._batch_bytes = batch_bytes
        # A batch must fit max.message.bytes whole, or the log refuses every message in it.
        self._batch_limit = {name: min(batch_bytes, limit) for name, limit in self._max_record.items()}
        self._groups: dict[str, EmbeddedGroup] = {}
        self._consumers: weakref.WeakSet[EmbeddedConsumer] = weakref.WeakSet()
        self._sticky: dict[str, tuple[int, Batch | None]] = {}
        self._closed = False
        self._writer = Writer(
            self,
            linger_ms=linger_ms,
            batch_bytes=batch_bytes,
            buffer_bytes=buffer_bytes,
            flush_always=policy.name == "always",
        )

    # -------------------------------------------------------------------------------------- topics

    def create_topic(
        self, name: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> TopicDescription:
        with self.lock:
            self._check_open()
            if name in self._counts:
                raise TopicExistsError(name)
            info = self._logs.create_topic(name, partitions, config)
            self._topic_added(name, info.partitions)
            return TopicDescription(name, info.partitions, dict(info.configs))

    def delete_topic(self, name: str) -> None:
        # Let what was published to it so far land first (failures are the publishers' to see).
        self._writer.wait_all(None)
        with self.lock:
            self._check_open()
            if name not in self._counts:
                raise UnknownTopicError(name)
            self._logs.delete_topic(name)
            # Offsets die with the topic: a new topic of that name is read from the start policy.
            self._offsets.delete_topic_offsets(name, wall_clock_ms())
            del self._counts[name]
            self._max_record.pop(name, None)
            self._batch_limit.pop(name, None)
            self._sticky.pop(name, None)
            self._metadata_changed()

    def list_topics(self) -> list[str]:
        with self.lock:
            return sorted(self._counts)

    def describe_topic(self, name: str) -> TopicDescription:
        with self.lock:
            info = self._logs.topics().get(name)
            if info is None:
                raise UnknownTopicError(name)
            return TopicDescription(name, info.partitions, dict(info.configs))

    def partition_count(self, topic: str, *, create: bool = True) -> int:
        """Partitions of ``topic``, creating it with ``default_partitions`` if missing (and allowed)."""
        count = self._counts.get(topic)
        if count is not None:
            return count
        with self.lock:
            self._check_open()
            count = self._counts.get(topic)
            if count is None:
                if not create:
                    raise UnknownTopicError(topic)
                info = self._logs.create_topic(topic, self.default_partitions)
                self._topic_added(topic, info.partitions)
                count = info.partitions
            return count

    def partition_counts(self) -> dict[str, int]:
        return dict(self._counts)

    def topic_id(self, topic: str) -> uuid.UUID | None:
        """The topic's id: a topic deleted and created again under its name gets a new one."""
        info = self._logs.topics().get(topic)
        return None if info is None else info.topic_id

    def _topic_added(self, name: str, partitions: int) -> None:
        self._counts[name] = partitions
        self._max_record[name] = self._record_limit(name)
        self._batch_limit[name] = min(self._batch_bytes, self._max_record[name])
        self._metadata_changed()

    def _record_limit(self, topic: str) -> int:
        return LogConfig.from_configs(self._logs.effective_config(topic)).max_message_bytes - MAX_RECORD_SLACK

    def _metadata_changed(self) -> None:
        self.metadata_version += 1
        counts = dict(self._counts)
        for group in self._groups.values():
            group.rebalance(counts)
        self.notify()

    # ---------------------------------------------------------------------------------- publishing

    def publish(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        headers: Iterable[Header] | dict[str, bytes | str | None] | None = None,
        partition: int | None = None,
        *,
        timestamp: When | None = None,
    ) -> PublishFuture[Published]:
        if self._bytes_values and type(value) is bytes:
            data: bytes | None = value
        else:
            data = None if value is None else self.value_codec.encode(value)
        key_data = None if key is None else self.key_codec.encode(key)
        header_list = normalise_headers(headers)
        when = wall_clock_ms() if timestamp is None else to_millis(timestamp)
        size = RECORD_OVERHEAD + (len(data) if data is not None else 0)
        if key_data is not None:
            size += len(key_data)
        if header_list:
            size += sum(len(name) + len(v or b"") + 8 for name, v in header_list)
        partition = self._choose_partition(topic, key_data, partition)
        limits = self._limits(topic)
        if size > limits[0]:
            raise self._too_large(topic, size)
        if not _INT64_MIN <= when <= _INT64_MAX:
            raise ValueError(f"timestamp {when} ms is outside the 64-bit range Kafka timestamps use")
        batch, index = self._writer.add(
            topic, partition, (key_data, data, header_list, when), size, limits[1]
        )
        return EmbeddedPublishFuture(self._writer, batch, index)

    def publish_many(
        self, topic: str, values: Iterable[Any], key: Any = None, partition: int | None = None
    ) -> PublishFuture[list[Published]]:
        datas = values if isinstance(values, list) else list(values)
        if not (self._bytes_values and set(map(type, datas)) <= {bytes}):
            encode = self.value_codec.encode
            datas = [None if v is None else encode(v) for v in datas]
        if not datas:
            return EmbeddedManyFuture(self._writer, [])
        key_data = None if key is None else self.key_codec.encode(key)
        extra = RECORD_OVERHEAD + (len(key_data) if key_data is not None else 0)
        lengths = list(map(len, datas)) if None not in datas else [len(d) if d else 0 for d in datas]
        partition = self._choose_partition(topic, key_data, partition)
        largest = max(lengths) + extra
        limits = self._limits(topic)
        if largest > limits[0]:
            raise self._too_large(topic, largest)
        ends = list(itertools.accumulate(lengths, lambda total, n: total + n + extra, initial=0))[1:]
        when = wall_clock_ms()
        items: list[Item] = list(zip(repeat(key_data), datas, repeat(None), repeat(when), strict=False))
        parts = self._writer.add_many(topic, partition, items, ends, limits[1])
        return EmbeddedManyFuture(self._writer, parts)

    def _choose_partition(self, topic: str, key: bytes | None, partition: int | None) -> int:
        count = self._counts.get(topic) or self.partition_count(topic)
        if partition is not None:
            if not 0 <= partition < count:
                raise UnknownTopicError(
                    topic, f"topic {topic!r} has partitions 0..{count - 1}; there is no partition {partition}"
                )
            return partition
        if count == 1:
            return 0
        if key is not None:
            return partition_for_key(key, count)
        # Sticky partitioner (KIP-480): stay on one partition until its batch is sealed.
        sticky = self._sticky.get(topic)
        if sticky is not None:
            chosen, batch = sticky
            current = self._writer.open_batches.get((topic, chosen))
            if current is not None and (batch is None or current is batch):
                self._sticky[topic] = (chosen, current)
                return chosen
            previous = chosen
        else:
            previous = -1
        chosen = random.randrange(count)
        if count > 1 and chosen == previous:
            chosen = (chosen + 1) % count
        self._sticky[topic] = (chosen, None)
        return chosen

    def _limits(self, topic: str) -> tuple[int, int]:
        """(largest message, largest batch) for the topic; it may have been deleted just now."""
        largest, batch = self._max_record.get(topic), self._batch_limit.get(topic)
        if largest is None or batch is None:
            raise UnknownTopicError(topic, f"topic {topic!r} was deleted while publishing to it")
        return largest, batch

    def _too_large(self, topic: str, size: int) -> PublishError:
        return PublishError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"a message of about {size} bytes exceeds topic {topic!r}'s max.message.bytes "
            f"({self._max_record.get(topic, 0) + MAX_RECORD_SLACK}); raise it with topic config "
            "max.message.bytes",
        )

    def flush(self, timeout: float | None = None) -> None:
        self._writer.flush(timeout)

    def append_batches(self, frames: list[tuple[Batch, bytearray | None]], flush_always: bool) -> None:
        """Called by the writer thread: append encoded batches, fsync (``always``), wake consumers.
        Failures are recorded on the batches."""
        now = wall_clock_ms()
        by_log: dict[int, tuple[PartitionLog, list[Batch]]] = {}
        with self.lock:
            for batch, frame in frames:
                if frame is None:
                    continue
                plog = self._logs.partition(batch.topic, batch.partition) if not self._closed else None
                if plog is None:
                    batch.error = PublishError(
                        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        f"{batch.topic}-{batch.partition} was deleted before the message was written",
                    )
                    continue
                try:
                    result = plog.append(frame, now, defer_flush=True)
                except (KafkaApiError, StorageError) as exc:
                    batch.error = append_error(exc)
                    continue
                batch.base_offset = result.base_offset
                batch.log_append_time = result.log_append_time_ms
                by_log.setdefault(id(plog), (plog, []))[1].append(batch)
            if not flush_always:
                self.notify()
                return
            pending = []
            for plog, batches in by_log.values():
                try:
                    flush = plog.prepare_flush()
                except StorageError as exc:
                    for batch in batches:
                        batch.error = append_error(exc)
                    continue
                if flush is not None:
                    pending.append((plog, batches, flush))
        outcomes = []
        for plog, batches, flush in pending:  # off the lock: consumers keep reading meanwhile
            error: OSError | None = None
            try:
                flush.run()
            except OSError as exc:
                error = exc
            outcomes.append((plog, batches, flush, error))
        with self.lock:
            for plog, batches, flush, error in outcomes:
                try:
                    plog.complete_flush(flush, error)
                except StorageError as exc:
                    for batch in batches:
                        batch.error = append_error(exc)
            self.notify()

    def tick(self) -> None:
        """Periodic storage work (interval flushes, checkpoints), run by the writer thread."""
        with self.lock:
            if not self._closed:
                self._logs.tick(wall_clock_ms())
                self._offsets.flush_if_due(wall_clock_ms())

    # ----------------------------------------------------------------------------------- consuming

    def subscribe(
        self,
        topics: str | Iterable[str],
        group: str | None = None,
        *,
        auto_commit: bool = True,
        start: StartPosition = "earliest",
        value_codec: CodecSpec | None = None,
        key_codec: CodecSpec | None = None,
    ) -> EmbeddedConsumer:
        self._check_open()
        names = subscription_topics(topics, start)
        consumer = EmbeddedConsumer(
            self,
            names,
            group,
            auto_commit=auto_commit,
            start=start,
            value_codec=self.value_codec if value_codec is None else make_codec(value_codec),
            key_codec=self.key_codec if key_codec is None else make_codec(key_codec),
        )
        self._consumers.add(consumer)
        return consumer

    def group(self, name: str) -> EmbeddedGroup:
        """The in-process group of that name (created on first use). Call under ``lock``."""
        group = self._groups.get(name)
        if group is None:
            group = self._groups[name] = EmbeddedGroup(name, self.max_poll_interval_ms)
        return group

    def partition(self, topic: str, index: int) -> PartitionLog | None:
        """The partition's log (None if it does not exist). Call under ``lock``."""
        return self._logs.partition(topic, index)

    def notify(self) -> None:
        """Wake every waiting consumer. Call under ``lock``."""
        self.data_version += 1
        self.data_changed.notify_all()

    def commit_offsets(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        """Durably record ``offsets`` for ``group`` (same store ``riel serve`` uses). Under ``lock``."""
        now = wall_clock_ms()
        self._offsets.commit(
            group,
            {tp: CommittedOffset(offset, commit_timestamp_ms=now) for tp, offset in offsets.items()},
            now,
        )

    def committed_offset(self, group: str, tp: TopicPartition) -> int | None:
        found = self._offsets.get(group, tp)
        return None if found is None else found.offset

    # -------------------------------------------------------------------------------------- replay

    def replay(
        self, topic: str, since: datetime | int | None = None, until: datetime | int | None = None
    ) -> Iterator[Message]:
        # Not a generator itself: the bounds are fixed now, when replay is called.
        since_ms = to_millis(since) if isinstance(since, datetime) else None
        until_ms = to_millis(until) if isinstance(until, datetime) else None
        ranges: list[tuple[int, int, int]] = []
        with self.lock:
            self._check_open()
            count = self._counts.get(topic)
            if count is None:
                raise UnknownTopicError(topic)
            for index in range(count):
                plog = self._logs.partition(topic, index)
                assert plog is not None
                end = plog.high_watermark
                if isinstance(until, int) and not isinstance(until, bool):
                    end = min(end, until)
                if since_ms is not None:
                    found = plog.offset_for_timestamp(since_ms)
                    start = end if found is None else found[0]
                elif isinstance(since, int) and not isinstance(since, bool):
                    start = max(since, plog.log_start_offset)
                else:
                    start = plog.log_start_offset
                ranges.append((index, start, end))
        streams = [self._replay_partition(topic, p, s, e, until_ms) for p, s, e in ranges if s < e]
        # One partition needs no merge, and plain bytes no decoding: skip both on that common path.
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_replay_order)
        key_codec, value_codec = self.key_codec, self.value_codec
        if isinstance(key_codec, BytesCodec) and isinstance(value_codec, BytesCodec):
            return iter(merged)
        return (decode_with(message, key_codec, value_codec) for message in merged)

    def _replay_partition(
        self, topic: str, index: int, start: int, end: int, until_ms: int | None
    ) -> Iterator[Message]:
        position = start
        while position < end:
            with self.lock:
                plog = self._logs.partition(topic, index)
                if plog is None:
                    return
                try:
                    data = read_raw(plog, position)
                except KafkaApiError as exc:
                    if exc.code != ErrorCode.OFFSET_OUT_OF_RANGE or position >= plog.log_start_offset:
                        raise
                    position = plog.log_start_offset  # deleted meanwhile: go on from what is left
                    continue
            if data is None:
                return
            messages, position = decode_messages(data, topic, index, position)
            if until_ms is None and messages and messages[-1].offset < end:
                yield from messages  # the whole read is inside the range
                continue
            for message in messages:
                if message.offset >= end or (until_ms is not None and message.timestamp >= until_ms):
                    return
                yield message

    # ----------------------------------------------------------------------------------------- lag

    def lag(self, group: str) -> dict[TopicPartition, int]:
        with self.lock:
            result: dict[TopicPartition, int] = {}
            for tp, committed in sorted(self._offsets.group_offsets(group).items()):
                plog = self._logs.partition(*tp)
                if plog is not None:
                    result[tp] = max(0, plog.high_watermark - committed.offset)
            return result

    # ----------------------------------------------------------------------------------- lifecycle

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this event log is closed")

    def close(self) -> None:
        with self._close_lock:  # a second caller returns only once the first has finished
            if self._closed:
                return
            self._writer.close()  # writes (and acknowledges) everything published so far
            for consumer in list(self._consumers):
                consumer.close()
            self._close_storage()
        self._remove_temp_dir()

    def _close_storage(self) -> None:
        with self.lock:
            self._closed = True
            try:
                self._offsets.close()
            finally:
                self._logs.close(clean=True)
                self.notify()

    def _remove_temp_dir(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<EmbeddedLog {self.path} flush={self.flush_policy.name}{' closed' if self._closed else ''}>"


def _replay_order(message: Message) -> tuple[int, int]:
    return message.timestamp, message.partition
