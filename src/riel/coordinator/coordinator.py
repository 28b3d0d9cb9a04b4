"""The group coordinator: every group of this broker, their committed offsets, and offset expiry.

Synchronous and clock-free like ``Group``: each call takes ``now_ms``; JoinGroup and SyncGroup return
None when the answer must wait, and answers that become ready (for this request or for others) are
appended to ``outbox`` as ``(waiter, result)`` for the async driver to deliver. The only I/O is the
offsets store (committing, expiring and deleting offsets are durable before the call returns).

A single Riel broker coordinates every group (FindCoordinator always names this node), so there is no
partitioning of groups over ``__consumer_offsets`` partitions and no loading phase.

Group membership lives in memory only: after a restart, groups that have committed offsets come back
as Empty groups (their consumers rejoin, as they do after a Kafka coordinator failover).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from riel.config import GroupConfig
from riel.coordinator.consumer_protocol import CONSUMER_PROTOCOL_TYPE, assigned_partitions, subscribed_topics
from riel.coordinator.group import (
    Completion,
    Group,
    GroupDescription,
    JoinRequest,
    JoinResult,
    SyncResult,
    Waiter,
    random_member_id,
)
from riel.coordinator.state_machine import GroupState
from riel.errors import ErrorCode, KafkaApiError, StorageError
from riel.storage.offsets_store import CommittedOffset, OffsetsStore, TopicPartition

log = logging.getLogger(__name__)

# (topic, partition) -> high watermark, or None if the partition does not exist.
HighWatermarkLookup = Callable[[str, int], int | None]


@dataclass(frozen=True, slots=True)
class OffsetCommitEntry:
    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = None


@dataclass(frozen=True, slots=True)
class GroupOverview:
    group_id: str
    protocol_type: str
    state: GroupState


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a group: how far its committed offset is behind the high watermark.

    ``committed_offset`` is None for a partition a member owns but has not committed yet;
    ``high_watermark`` is None if the partition no longer exists; ``lag`` is None if either is.
    """

    topic: str
    partition: int
    committed_offset: int | None
    high_watermark: int | None
    lag: int | None
    member_id: str | None = None
    client_id: str | None = None


class GroupCoordinator:
    def __init__(
        self,
        config: GroupConfig,
        offsets: OffsetsStore,
        high_watermark: HighWatermarkLookup,
        now_ms: int,
        *,
        new_member_id: Callable[[str], str] = random_member_id,
    ) -> None:
        self.config = config
        self.offsets = offsets
        self._high_watermark = high_watermark
        self._new_member_id = new_member_id
        self.outbox: list[Completion] = []
        self.groups: dict[str, Group] = {}
        for group_id in offsets.groups():
            self._new_group(group_id, now_ms)
        self._next_expiry_ms = now_ms + config.offsets_retention_check_interval_ms

    def _new_group(self, group_id: str, now_ms: int) -> Group:
        group = Group(group_id, now_ms, self.config, self.outbox, new_member_id=self._new_member_id)
        self.groups[group_id] = group
        return group

    def _forget(self, group: Group, now_ms: int) -> None:
        group.delete(now_ms)
        self.groups.pop(group.group_id, None)

    def _forget_if_unused(self, group: Group, now_ms: int) -> None:
        """Drop a group that holds nothing: no members, no offsets (e.g. created by a failed join)."""
        if (
            group.state is GroupState.EMPTY
            and group.is_empty()
            and not self.offsets.group_offsets(group.group_id)
        ):
            self._forget(group, now_ms)

    # ------------------------------------------------------------------------------ membership

    def join(self, group_id: str, req: JoinRequest, waiter: Waiter, now_ms: int) -> JoinResult | None:
        if not group_id:
            return JoinResult(ErrorCode.INVALID_GROUP_ID, req.member_id)
        group = self.groups.get(group_id)
        if group is None:
            if req.member_id:
                # The group is gone (deleted, or the broker restarted): the member must join afresh.
                return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, req.member_id)
            group = self._new_group(group_id, now_ms)
        result = group.join(req, waiter, now_ms)
        if result is not None and result.error not in (ErrorCode.NONE, ErrorCode.MEMBER_ID_REQUIRED):
            self._forget_if_unused(group, now_ms)
        return result

    def sync(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
        waiter: Waiter,
        now_ms: int,
    ) -> SyncResult | None:
        if not group_id:
            return SyncResult(ErrorCode.INVALID_GROUP_ID)
        group = self.groups.get(group_id)
        if group is None:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        return group.sync(
            member_id,
            group_instance_id,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            waiter,
            now_ms,
        )

    def heartbeat(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int, now_ms: int
    ) -> ErrorCode:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return group.heartbeat(member_id, group_instance_id, generation_id, now_ms)

    def leave(
        self, group_id: str, members: Sequence[tuple[str, str | None]], now_ms: int
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        """(group-level error, one error per leaving member)."""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID] * len(members)
        return ErrorCode.NONE, group.leave(members, now_ms)

    # --------------------------------------------------------------------------------- offsets

    def commit_offsets(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        entries: Sequence[OffsetCommitEntry],
        now_ms: int,
        *,
        retention_ms: int | None = None,
    ) -> list[ErrorCode]:
        """One error code per entry, in order. Accepted entries are stored atomically and durably."""
        group = self.groups.get(group_id)
        created = False
        if group is None:
            if generation_id >= 0:
                # OffsetCommit v8 and below answer ILLEGAL_GENERATION for a group that does not exist
                # (v9 would say GROUP_ID_NOT_FOUND); the consumer rejoins and commits again.
                return [ErrorCode.ILLEGAL_GENERATION] * len(entries)
            # The admin client, or a consumer assigning partitions itself: a "simple" group.
            group = self._new_group(group_id, now_ms)
            created = True
        error = group.validate_offset_commit(member_id, group_instance_id, generation_id, now_ms)
        if error is not ErrorCode.NONE:
            return [error] * len(entries)
        errors: list[ErrorCode] = []
        accepted: dict[TopicPartition, CommittedOffset] = {}
        expire = None if retention_ms is None or retention_ms < 0 else now_ms + retention_ms
        for entry in entries:
            metadata = entry.metadata or ""
            if len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                errors.append(ErrorCode.OFFSET_METADATA_TOO_LARGE)
            elif self._high_watermark(entry.topic, entry.partition) is None:
                errors.append(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            else:
                errors.append(ErrorCode.NONE)
                accepted[(entry.topic, entry.partition)] = CommittedOffset(
                    entry.offset, entry.leader_epoch, metadata, now_ms, expire
                )
        try:
            self.offsets.commit(group_id, accepted, now_ms)
        except StorageError as exc:
            log.error("committing offsets of group %r failed: %s", group_id, exc)
            errors = [ErrorCode.KAFKA_STORAGE_ERROR if e is ErrorCode.NONE else e for e in errors]
        if created:
            self._forget_if_unused(group, now_ms)
        return errors

    def validate_member(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int, now_ms: int
    ) -> ErrorCode:
        """TxnOffsetCommit's check (KIP-447): a member of a live group must be current; commits
        without a generation, or for a group this coordinator does not know, are accepted."""
        group = self.groups.get(group_id)
        if group is None or generation_id < 0:
            return ErrorCode.NONE
        return group.validate_offset_commit(member_id, group_instance_id, generation_id, now_ms)

    def commit_transactional(
        self, group_id: str, offsets: dict[TopicPartition, CommittedOffset], now_ms: int
    ) -> None:
        """Store the offsets of a committed transaction (already validated when they were sent)."""
        self.offsets.commit(group_id, offsets, now_ms)

    def fetch_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition] | None
    ) -> list[tuple[TopicPartition, CommittedOffset | None]]:
        """The committed offset of each requested partition (None: nothing committed), or of every
        partition the group has committed when ``partitions`` is None."""
        offsets = self.offsets.group_offsets(group_id)
        if partitions is None:
            return sorted(offsets.items())
        return [(tp, offsets.get(tp)) for tp in partitions]

    def delete_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition], now_ms: int
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        """OffsetDelete: (group-level error, one error per partition)."""
        group = self.groups.get(group_id)
        if group is None or group.state is GroupState.DEAD:
            return ErrorCode.GROUP_ID_NOT_FOUND, []
        subscribed: set[str] = set()
        if group.state is not GroupState.EMPTY:
            if group.protocol_type != CONSUMER_PROTOCOL_TYPE:
                return ErrorCode.NON_EMPTY_GROUP, []
            subscribed = self._subscribed_topics(group) or set()
        errors: list[ErrorCode] = []
        doomed: list[TopicPartition] = []
        for topic, partition in partitions:
            if topic in subscribed:
                errors.append(ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC)
            elif self._high_watermark(topic, partition) is None:
                errors.append(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            else:
                errors.append(ErrorCode.NONE)
                doomed.append((topic, partition))
        try:
            self.offsets.delete_offsets(group_id, doomed, now_ms)
        except StorageError as exc:
            log.error("deleting offsets of group %r failed: %s", group_id, exc)
            return ErrorCode.KAFKA_STORAGE_ERROR, []
        return ErrorCode.NONE, errors

    def _subscribed_topics(self, group: Group) -> set[str] | None:
        """Union of the members' subscriptions for the chosen protocol; None if unreadable."""
        topics: set[str] = set()
        for member in group.members.values():
            found = subscribed_topics(member.metadata_for(group.protocol_name))
            if found is None:
                return None
            topics |= found
        return topics

    # ----------------------------------------------------------------------------------- admin

    def list_groups(self, states: Iterable[GroupState] | None = None) -> list[GroupOverview]:
        wanted = set(states) if states is not None else None
        return [
            GroupOverview(g.group_id, g.protocol_type or "", g.state)
            for g in self.groups.values()
            if wanted is None or g.state in wanted
        ]

    def describe_group(self, group_id: str) -> GroupDescription | None:
        group = self.groups.get(group_id)
        return None if group is None else group.describe()

    def delete_groups(self, group_ids: Sequence[str], now_ms: int) -> list[ErrorCode]:
        errors: list[ErrorCode] = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if not group_id:
                errors.append(ErrorCode.INVALID_GROUP_ID)
            elif group is None or group.state is GroupState.DEAD:
                errors.append(ErrorCode.GROUP_ID_NOT_FOUND)
            elif group.state is not GroupState.EMPTY or not group.is_empty():
                errors.append(ErrorCode.NON_EMPTY_GROUP)
            else:
                try:
                    self.offsets.delete_group(group_id, now_ms)
                except StorageError as exc:
                    log.error("deleting group %r failed: %s", group_id, exc)
                    errors.append(ErrorCode.KAFKA_STORAGE_ERROR)
                    continue
                self._forget(group, now_ms)
                errors.append(ErrorCode.NONE)
        return errors

    def group_lag(self, group_id: str) -> list[PartitionLag]:
        """Per partition the group has committed or owns: committed offset, high watermark, lag.

        ``KafkaApiError(GROUP_ID_NOT_FOUND)`` if the broker knows nothing of the group."""
        group = self.groups.get(group_id)
        committed = self.offsets.group_offsets(group_id)
        if group is None and not committed:
            raise KafkaApiError(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group_id!r} does not exist")
        owners: dict[TopicPartition, tuple[str, str]] = {}
        if group is not None and group.protocol_type == CONSUMER_PROTOCOL_TYPE:
            for member in group.members.values():
                for tp in assigned_partitions(member.assignment) or []:
                    owners[tp] = (member.member_id, member.client_id)
        rows: list[PartitionLag] = []
        for tp in sorted(set(committed) | set(owners)):
            offset = committed[tp].offset if tp in committed else None
            high_watermark = self._high_watermark(*tp)
            lag = None
            if offset is not None and high_watermark is not None:
                # A committed offset past the end (after records were deleted) is not negative lag.
                lag = max(0, high_watermark - offset)
            owner = owners.get(tp)
            rows.append(
                PartitionLag(
                    tp[0],
                    tp[1],
                    offset,
                    high_watermark,
                    lag,
                    owner[0] if owner else None,
                    owner[1] if owner else None,
                )
            )
        return rows

    # ---------------------------------------------------------------------------------- timers

    def next_deadline_ms(self) -> int | None:
        deadlines = [d for g in self.groups.values() if (d := g.next_deadline()) is not None]
        deadlines.append(self._next_expiry_ms)
        flush = self.offsets.next_flush_ms()
        if flush is not None:
            deadlines.append(flush)
        return min(deadlines)

    def tick(self, now_ms: int) -> None:
        """Fire every due timer: group joins, syncs and sessions, offset flushes, offset expiry."""
        for group in list(self.groups.values()):
            group.tick(now_ms)
        try:
            self.offsets.flush_if_due(now_ms)
        except StorageError as exc:
            log.error("%s", exc)
        if now_ms >= self._next_expiry_ms:
            self._next_expiry_ms = now_ms + self.config.offsets_retention_check_interval_ms
            self.expire_offsets(now_ms)

    def expire_offsets(self, now_ms: int) -> int:
        """Delete expired offsets (KIP-211 rules) and forget groups left with nothing; the count of
        offsets removed."""
        retention = self.config.offsets_retention_ms
        removed = 0
        for group in list(self.groups.values()):
            offsets = self.offsets.group_offsets(group.group_id)
            expired: list[TopicPartition] = []
            if group.state is GroupState.EMPTY and group.is_empty():
                for tp, c in offsets.items():
                    if c.expire_timestamp_ms is not None:
                        due = now_ms >= c.expire_timestamp_ms
                    elif group.protocol_type is None:
                        # A simple group (only ever committed to, e.g. by an admin or after a restart):
                        # its offsets age from their commit.
                        due = now_ms - c.commit_timestamp_ms >= retention
                    else:
                        # A consumer group's offsets age from the moment its last member left.
                        due = now_ms - max(group.state_since_ms, c.commit_timestamp_ms) >= retention
                    if due:
                        expired.append(tp)
            elif group.state is GroupState.STABLE and group.protocol_type == CONSUMER_PROTOCOL_TYPE:
                # Offsets of topics the group no longer subscribes to age from their commit.
                subscribed = self._subscribed_topics(group)
                if subscribed is not None:
                    expired = [
                        tp
                        for tp, c in offsets.items()
                        if tp[0] not in subscribed
                        and (
                            now_ms >= c.expire_timestamp_ms
                            if c.expire_timestamp_ms is not None
                            else now_ms - c.commit_timestamp_ms >= retention
                        )
                    ]
            if expired:
                try:
                    self.offsets.delete_offsets(group.group_id, expired, now_ms)
                except StorageError as exc:
                    log.error("expiring offsets of group %r failed: %s", group.group_id, exc)
                    continue
                removed += len(expired)
                log.info("expired %d committed offsets of group %r", len(expired), group.group_id)
            self._forget_if_unused(group, now_ms)
        return removed

    def close(self) -> None:
        self.offsets.close()
