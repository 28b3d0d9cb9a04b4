"""A consumer of the embedded log: reads partitions straight from the segment files.

Messages are read a megabyte of batches at a time per partition and handed out from that buffer; the
per-message path of ``poll`` is a couple of list operations. Every ``max_poll_records`` messages (and
whenever the buffer runs dry) the consumer does its housekeeping under the log's lock: it reports that
it is alive, follows rebalances of its group (committing and releasing revoked partitions, claiming
new ones), and auto-commits every ``auto_commit_interval_ms`` (Kafka's default: 5 s).

Auto-commit commits the positions of messages already returned by earlier polls, so, as in Kafka, a
crash replays at most what was in progress: at-least-once.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from riel.client.api import Consumer, Message, StartPosition, TopicPartition, When, to_millis
from riel.client.codecs import BytesCodec, Codec
from riel.client.embedded_group import EmbeddedGroup, Member
from riel.client.embedded_reader import decode_messages, decode_with, read_raw
from riel.clock import wall_clock_ms
from riel.errors import ErrorCode, GroupRequiredError, KafkaApiError, NotAssignedError

if TYPE_CHECKING:
    from riel.client.embedded import EmbeddedLog
    from riel.storage.partition_log import PartitionLog

MAX_POLL_RECORDS = 500  # Kafka's max.poll.records: how often housekeeping runs at full speed
AUTO_COMMIT_INTERVAL_MS = 5_000  # Kafka's auto.commit.interval.ms
HOUSEKEEPING_WAIT_S = 0.5  # longest sleep between housekeeping rounds while waiting for messages


class EmbeddedConsumer(Consumer):
    def __init__(
        self,
        log: EmbeddedLog,
        topics: list[str],
        group: str | None,
        *,
        auto_commit: bool,
        start: StartPosition,
        value_codec: Codec,
        key_codec: Codec,
        auto_commit_interval_ms: int = AUTO_COMMIT_INTERVAL_MS,
    ) -> None:
        self._log = log
        self._topics = frozenset(topics)
        self._group_name = group
        self._auto_commit = auto_commit and group is not None
        self._start = start
        self._codecs: tuple[Codec, Codec] | None = (
            None
            if isinstance(key_codec, BytesCodec) and isinstance(value_codec, BytesCodec)
            else (key_codec, value_codec)
        )
        self._commit_interval_ms = auto_commit_interval_ms
        self._positions: dict[TopicPartition, int] = {}  # next offset to return (outside the buffer)
        self._fetch_positions: dict[TopicPartition, int] = {}  # next offset to read from the log
        self._assigned: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()
        # The buffer: the chunk being handed out, then fetched chunks (tp, messages, end offset).
        self._chunk: list[Message] = []
        self._chunk_tp: TopicPartition | None = None
        self._chunk_end = 0
        self._index = 0
        self._stop = 0  # housekeeping runs when _index reaches _stop
        self._queue: deque[tuple[TopicPartition, list[Message], int]] = deque()
        self._rotation = 0
        self._closed = False
        self._generation = -1
        self._metadata_version = -1
        self._last_commit_ms = wall_clock_ms()
        self._committed_positions: dict[TopicPartition, int] = {}
        self._group: EmbeddedGroup | None = None
        self._member: Member | None = None
        self._topic_ids: dict[str, uuid.UUID | None] = {}
        # What the per-message path bumps: the group's Member, or a private one without a group.
        self._liveness = Member("", self._topics, 0)
        with log.lock:
            for topic in topics:
                log.partition_count(topic)  # created on first use, as publish does
            if group is not None:
                self._group = log.group(group)
                self._join(wall_clock_ms())
            self._housekeeping()

    # ------------------------------------------------------------------------------------ reading

    def poll(self, timeout: float | None = None) -> Message | None:
        index = self._index
        if index < self._stop:
            self._index = index + 1
            self._liveness.polls += 1
            return self._chunk[index]
        return self._poll_slow(timeout)

    def has_buffered(self) -> bool:
        return self._index < self._stop

    def __iter__(self) -> Iterator[Message]:
        while not self._closed:
            index = self._index
            if index < self._stop:
                self._index = index + 1
                self._liveness.polls += 1
                yield self._chunk[index]
                continue
            message = self._poll_slow(HOUSEKEEPING_WAIT_S)
            if message is not None:
                yield message

    def _poll_slow(self, timeout: float | None) -> Message | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        log = self._log
        while True:
            with log.lock:
                if self._closed or log.closed:
                    return None
                self._housekeeping()
                message = self._next_buffered()
                if message is not None:
                    return message
                version = log.data_version
            if self._fetch():
                continue
            with log.lock:
                if log.data_version == version and not self._closed:
                    wait = HOUSEKEEPING_WAIT_S
                    if deadline is not None:
                        wait = min(wait, deadline - time.monotonic())
                    if wait > 0:
                        member = self._liveness
                        member.waiting = True
                        try:
                            log.data_changed.wait(wait)
                        finally:
                            member.waiting = False
                            member.last_poll_ms = wall_clock_ms()
            if deadline is not None and time.monotonic() >= deadline:
                with log.lock:
                    return self._next_buffered()

    def _next_buffered(self) -> Message | None:
        """Hand out the next buffered message, moving to the next chunk as needed (under lock)."""
        while True:
            if self._index < len(self._chunk):
                self._stop = min(len(self._chunk), self._index + MAX_POLL_RECORDS)
                index = self._index
                self._index = index + 1
                self._liveness.polls += 1
                return self._chunk[index]
            self._finish_chunk()
            if not self._queue:
                return None
            tp, messages, end = self._queue.popleft()
            self._chunk, self._chunk_tp, self._chunk_end = messages, tp, end
            self._index = self._stop = 0

    def _finish_chunk(self) -> None:
        if self._chunk_tp is not None:
            if self._chunk_tp in self._assigned:
                self._positions[self._chunk_tp] = self._chunk_end
            self._chunk, self._chunk_tp, self._index, self._stop = [], None, 0, 0

    def _fetch(self) -> bool:
        """Read every unpaused assigned partition once; True if anything was buffered or moved."""
        log = self._log
        raw: list[tuple[TopicPartition, int, bytes]] = []
        with log.lock:
            if self._queue or self._index < len(self._chunk):
                return True
            order = sorted(self._assigned - self._paused)
            if not order:
                return False
            self._rotation = (self._rotation + 1) % len(order)
            for tp in order[self._rotation :] + order[: self._rotation]:
                plog = log.partition(*tp)
                if plog is None:
                    continue
                offset = self._fetch_positions[tp]
                try:
                    data = read_raw(plog, offset)
                except KafkaApiError as exc:
                    if exc.code != ErrorCode.OFFSET_OUT_OF_RANGE:
                        raise
                    reset = plog.log_start_offset if self._start == "earliest" else plog.high_watermark
                    self._positions[tp] = self._fetch_positions[tp] = reset
                    raw.append((tp, reset, b""))
                    continue
                if data is not None:
                    raw.append((tp, offset, data))
        progressed = False
        for tp, offset, data in raw:
            if not data:
                progressed = True
                continue
            messages, end = decode_messages(data, tp[0], tp[1], offset)
            if self._codecs is not None:
                key_codec, value_codec = self._codecs
                messages = [decode_with(m, key_codec, value_codec) for m in messages]
            with log.lock:
                if tp not in self._assigned or self._fetch_positions.get(tp) != offset:
                    continue  # revoked or moved while decoding
                self._fetch_positions[tp] = end
                if messages:
                    self._queue.append((tp, messages, end))
                else:
                    self._positions[tp] = end
                progressed = True
        return progressed

    # ------------------------------------------------------------------------------- housekeeping

    def _wake(self) -> None:
        """Called (under the log's lock, from any thread) when the group wants this consumer's
        attention: the per-message path ends, so the next poll does housekeeping."""
        self._stop = 0

    def _join(self, now: int) -> None:
        assert self._group is not None
        self._member = self._liveness = self._group.join(
            self._topics, now, self._log.partition_counts(), wake=self._wake
        )
        self._log.notify()  # the other members have partitions to give up

    def _housekeeping(self) -> None:
        """Liveness, rebalances, re-created topics, auto-commit. Under the log's lock."""
        log = self._log
        now = wall_clock_ms()
        group, member = self._group, self._member
        if self._metadata_version != log.metadata_version:
            self._forget_replaced_topics()
        if group is not None and member is not None:
            counts = log.partition_counts()
            if not group.is_member(member):  # removed for not polling: join again, from committed
                self._drop_partitions(set(self._assigned))
                self._join(now)
                member = self._member
                assert member is not None
            member.last_poll_ms = now
            if group.evict_stale(now, counts):
                log.notify()
            if self._generation != group.generation or len(member.owned) != len(
                group.target.get(member.member_id, ())
            ):
                revoked = group.revoked(member)
                if revoked:
                    if self._auto_commit:
                        positions = self._current_positions(revoked)
                        self._commit_now({tp: o for tp, o in positions.items() if tp[0] in counts})
                    self._drop_partitions(revoked)
                    group.release(member, revoked)
                    log.notify()
                for tp in group.claim(member):
                    self._assign(tp, log.committed_offset(group.name, tp))
                self._generation = group.generation
        elif self._metadata_version != log.metadata_version or len(self._assigned) < len(self._wanted()):
            wanted = self._wanted()
            self._drop_partitions(self._assigned - wanted)
            for tp in wanted - self._assigned:
                self._assign(tp, None)
        self._metadata_version = log.metadata_version
        if self._auto_commit and now - self._last_commit_ms >= self._commit_interval_ms:
            self._commit_now(self._current_positions(self._assigned))

    def _wanted(self) -> set[TopicPartition]:
        counts = self._log.partition_counts()
        return {(t, p) for t in self._topics for p in range(counts.get(t, 0))}

    def _forget_replaced_topics(self) -> None:
        """Partitions of topics deleted (and maybe created again) since we assigned them: their
        positions mean nothing now. Dropped without committing; the group hands them out again."""
        log = self._log
        stale = {tp for tp in self._assigned if log.topic_id(tp[0]) != self._topic_ids.get(tp[0])}
        if not stale:
            return
        self._drop_partitions(stale)
        if self._group is not None and self._member is not None:
            self._group.release(self._member, stale)
            log.notify()

    def _assign(self, tp: TopicPartition, offset: int | None) -> None:
        plog = self._log.partition(*tp)
        if plog is None:
            return
        self._topic_ids[tp[0]] = self._log.topic_id(tp[0])
        if offset is None:
            offset = plog.log_start_offset if self._start == "earliest" else plog.high_watermark
        self._assigned.add(tp)
        self._positions[tp] = self._fetch_positions[tp] = offset

    def _drop_partitions(self, partitions: set[TopicPartition]) -> None:
        """Stop reading ``partitions``: buffered messages, positions and pause state go."""
        self._drop_buffer(partitions)
        self._assigned -= partitions
        self._paused -= partitions
        for tp in partitions:
            self._positions.pop(tp, None)
            self._fetch_positions.pop(tp, None)
            self._committed_positions.pop(tp, None)

    def _drop_buffer(self, partitions: set[TopicPartition]) -> None:
        """Forget buffered messages of ``partitions``; their positions stay at the last returned one."""
        if not partitions:
            return
        if self._chunk_tp in partitions:
            assert self._chunk_tp is not None
            self._positions[self._chunk_tp] = self._current_position(self._chunk_tp)
            self._chunk, self._chunk_tp, self._index, self._stop = [], None, 0, 0
        if any(tp in partitions for tp, _, _ in self._queue):
            self._queue = deque(entry for entry in self._queue if entry[0] not in partitions)
        for tp in partitions:
            if tp in self._positions:
                self._fetch_positions[tp] = self._positions[tp]

    def _current_position(self, tp: TopicPartition) -> int:
        if tp == self._chunk_tp and self._index > 0:
            return self._chunk[self._index - 1].offset + 1
        return self._positions[tp]

    def _current_positions(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._current_position(tp) for tp in partitions if tp in self._positions}

    def _commit_now(self, offsets: dict[TopicPartition, int]) -> None:
        changed = {tp: o for tp, o in offsets.items() if self._committed_positions.get(tp) != o}
        self._last_commit_ms = wall_clock_ms()
        if changed and self._group_name is not None:
            self._log.commit_offsets(self._group_name, changed)
            self._committed_positions.update(changed)

    # ---------------------------------------------------------------------------------- commits

    def commit(
        self, message: Message | None = None, *, offsets: dict[TopicPartition, int] | None = None
    ) -> None:
        if self._group_name is None:
            raise GroupRequiredError("commit")
        with self._log.lock:
            self._check_ownership(
                [(message.topic, message.partition)] if message is not None else list(offsets or ())
            )
            if message is not None:
                offsets = {(message.topic, message.partition): message.offset + 1}
            elif offsets is None:
                offsets = self._current_positions(self._assigned)
            self._committed_positions.clear()  # an explicit commit always writes
            self._commit_now(dict(offsets))

    def _check_ownership(self, partitions: list[TopicPartition]) -> None:
        """Only the member that owns a partition may commit it (Kafka's CommitFailedException):
        a member that lost it would otherwise rewind the new owner's progress."""
        group, member = self._group, self._member
        assert group is not None and member is not None
        if not group.is_member(member):
            raise KafkaApiError(
                ErrorCode.UNKNOWN_MEMBER_ID,
                "this consumer was removed from its group (it did not poll within max_poll_interval_ms); "
                "its partitions went to other members, so it cannot commit: poll again to rejoin",
            )
        lost = sorted(tp for tp in partitions if tp not in member.owned)
        if lost:
            raise KafkaApiError(
                ErrorCode.ILLEGAL_GENERATION,
                f"cannot commit {lost}: the group gave those partitions to another member in a "
                "rebalance; their messages will be processed there",
            )

    def committed(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int | None]:
        if self._group_name is None:
            raise GroupRequiredError("committed()")
        with self._log.lock:
            wanted = self._assigned if partitions is None else set(partitions)
            return {tp: self._log.committed_offset(self._group_name, tp) for tp in wanted}

    # --------------------------------------------------------------------------------- positions

    def assignment(self) -> set[TopicPartition]:
        with self._log.lock:
            self._housekeeping()
            return set(self._assigned)

    def position(self, topic: str, partition: int) -> int:
        with self._log.lock:
            self._require_assigned([(topic, partition)])
            return self._current_position((topic, partition))

    def _require_assigned(self, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        chosen = list(partitions)
        missing = [tp for tp in chosen if tp not in self._assigned]
        if missing:
            raise NotAssignedError(
                f"partitions {sorted(missing)} are not assigned to this consumer "
                f"(assigned: {sorted(self._assigned)}); a group member can only seek, pause or ask "
                "the position of its own partitions"
            )
        return chosen

    def _move(self, targets: dict[TopicPartition, int]) -> None:
        self._drop_buffer(set(targets))
        for tp, offset in targets.items():
            self._positions[tp] = self._fetch_positions[tp] = offset
        self._log.notify()

    def seek(self, topic: str, partition: int, offset: int) -> None:
        if offset < 0:
            raise ValueError(f"offsets are >= 0, got {offset}")
        with self._log.lock:
            self._require_assigned([(topic, partition)])
            self._move({(topic, partition): offset})

    def _partitions(self, partitions: Iterable[TopicPartition] | None) -> list[TopicPartition]:
        return sorted(self._assigned) if partitions is None else self._require_assigned(partitions)

    def _seek_each(
        self, partitions: Iterable[TopicPartition] | None, where: Callable[[PartitionLog], int]
    ) -> None:
        with self._log.lock:
            targets = {}
            for tp in self._partitions(partitions):
                plog = self._log.partition(*tp)
                if plog is not None:
                    targets[tp] = where(plog)
            self._move(targets)

    def seek_to_time(self, when: When, partitions: Iterable[TopicPartition] | None = None) -> None:
        millis = to_millis(when)

        def first_at_or_after(plog: PartitionLog) -> int:
            found = plog.offset_for_timestamp(millis)
            return plog.high_watermark if found is None else found[0]

        self._seek_each(partitions, first_at_or_after)

    def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._seek_each(partitions, lambda plog: plog.log_start_offset)

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._seek_each(partitions, lambda plog: plog.high_watermark)

    def pause(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        with self._log.lock:
            chosen = set(self._partitions(partitions))
            self._drop_buffer(chosen)
            self._paused |= chosen

    def resume(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        with self._log.lock:
            self._paused -= set(self._partitions(partitions))
            self._log.notify()

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    # --------------------------------------------------------------------------------- lifecycle

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        log = self._log
        with log.lock:
            if self._closed:
                return
            self._closed = True
            if log.closed:
                return
            group, member = self._group, self._member
            if group is not None and member is not None and group.is_member(member):
                if self._auto_commit:
                    counts = log.partition_counts()
                    positions = self._current_positions(member.owned & self._assigned)
                    self._commit_now({tp: o for tp, o in positions.items() if tp[0] in counts})
                group.leave(member, log.partition_counts())
            self._drop_partitions(set(self._assigned))  # nothing more is handed out
            self._chunk, self._chunk_tp, self._index, self._stop = [], None, 0, 0
            self._queue.clear()
            log.notify()
