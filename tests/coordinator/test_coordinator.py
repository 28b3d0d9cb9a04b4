"""The coordinator over many groups: offset commits and their validation, expiry (KIP-211 rules), lag,
deletion, and groups coming back from committed offsets after a restart."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from riel.config import FlushPolicy, GroupConfig
from riel.coordinator.coordinator import GroupCoordinator, OffsetCommitEntry, PartitionLag
from riel.coordinator.group import JoinRequest, JoinResult
from riel.coordinator.state_machine import GroupState
from riel.errors import ErrorCode, KafkaApiError
from riel.storage.offsets_store import OffsetsStore

T0 = 1_700_000_000_000
MINUTE = 60_000
RETENTION_MINUTES = 60
CONFIG = GroupConfig(
    initial_rebalance_delay_ms=0,
    offsets_retention_minutes=RETENTION_MINUTES,
    offsets_retention_check_interval_ms=MINUTE,
)


def subscription(*topics: str) -> bytes:
    out = struct.pack(">hi", 0, len(topics))
    for t in topics:
        out += struct.pack(">h", len(t)) + t.encode()
    return out + struct.pack(">i", -1)


def assignment(topic: str, *partitions: int) -> bytes:
    return (
        struct.pack(">hi", 0, 1)
        + struct.pack(">h", len(topic))
        + topic.encode()
        + struct.pack(">i", len(partitions))
        + b"".join(struct.pack(">i", p) for p in partitions)
        + struct.pack(">i", -1)
    )


class Env:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.watermarks: dict[tuple[str, int], int] = {("t", 0): 100, ("t", 1): 50, ("u", 0): 10}
        self.store = OffsetsStore(data_dir, FlushPolicy.parse("always"))
        self.store.open()
        self.now = T0
        self.coordinator = GroupCoordinator(CONFIG, self.store, self.high_watermark, self.now)
        self._waiter = 0

    def high_watermark(self, topic: str, partition: int) -> int | None:
        return self.watermarks.get((topic, partition))

    def reopen(self) -> None:
        self.coordinator.close()
        self.store = OffsetsStore(self.data_dir, FlushPolicy.parse("always"))
        self.store.open()
        self.coordinator = GroupCoordinator(CONFIG, self.store, self.high_watermark, self.now)

    def commit(
        self,
        group: str,
        offsets: dict[tuple[str, int], int],
        *,
        member: str = "",
        generation: int = -1,
        metadata: str | None = None,
        retention_ms: int | None = None,
    ) -> list[ErrorCode]:
        entries = [OffsetCommitEntry(t, p, o, -1, metadata) for (t, p), o in offsets.items()]
        return self.coordinator.commit_offsets(
            group, member, None, generation, entries, self.now, retention_ms=retention_ms
        )

    def member(self, group: str, topics: tuple[str, ...] = ("t",)) -> tuple[str, int]:
        """A single stable member subscribed to ``topics`` and owning t-0 and t-1: (member id, generation)."""
        self._waiter += 1
        req = JoinRequest(
            "", None, "consumer", (("range", subscription(*topics)),), 10_000, 10_000, "cli", "", False
        )
        assert self.coordinator.join(group, req, self._waiter, self.now) is None
        ((_, joined),) = self.coordinator.outbox
        self.coordinator.outbox.clear()
        assert isinstance(joined, JoinResult) and joined.error is ErrorCode.NONE
        self._waiter += 1
        synced = self.coordinator.sync(
            group,
            joined.member_id,
            None,
            joined.generation_id,
            None,
            None,
            {joined.member_id: assignment("t", 0, 1)},
            self._waiter,
            self.now,
        )
        assert synced is None and self.coordinator.groups[group].state is GroupState.STABLE
        self.coordinator.outbox.clear()
        return joined.member_id, joined.generation_id

    def advance(self, ms: int) -> None:
        self.now += ms
        self.coordinator.tick(self.now)

    def offsets(self, group: str) -> dict[tuple[str, int], int]:
        return {tp: c.offset for tp, c in self.coordinator.fetch_offsets(group, None) if c is not None}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.coordinator.close()


def test_commits_are_validated_per_partition(env: Env) -> None:
    assert env.commit("g", {("t", 0): 5, ("nope", 0): 1, ("t", 7): 1}) == [
        ErrorCode.NONE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ]
    assert env.commit("g", {("t", 1): 5}, metadata="x" * 5000) == [ErrorCode.OFFSET_METADATA_TOO_LARGE]
    assert env.offsets("g") == {("t", 0): 5}
    # A generation for a group that does not exist: the member must rejoin (OffsetCommit <= v8).
    assert env.commit("ghost", {("t", 0): 1}, member="m", generation=3) == [ErrorCode.ILLEGAL_GENERATION]
    assert "ghost" not in env.coordinator.groups
    member, generation = env.member("active")
    assert env.commit("active", {("t", 0): 9}) == [ErrorCode.UNKNOWN_MEMBER_ID]  # admins wait for empty
    assert env.commit("active", {("t", 0): 9}, member=member, generation=generation) == [ErrorCode.NONE]
    assert env.commit("active", {("t", 0): 9}, member=member, generation=generation + 1) == [
        ErrorCode.ILLEGAL_GENERATION
    ]


def test_offsets_of_an_empty_consumer_group_expire_after_retention_since_it_emptied(env: Env) -> None:
    member, generation = env.member("g")
    env.commit("g", {("t", 0): 10}, member=member, generation=generation)
    env.advance(2 * RETENTION_MINUTES * MINUTE)  # active groups keep offsets of subscribed topics
    assert env.offsets("g") == {("t", 0): 10}
    env.coordinator.leave("g", [(member, None)], env.now)
    assert env.coordinator.groups["g"].state is GroupState.EMPTY
    env.advance(RETENTION_MINUTES * MINUTE - MINUTE)
    assert env.offsets("g") == {("t", 0): 10}
    env.advance(MINUTE)
    assert env.offsets("g") == {}
    assert "g" not in env.coordinator.groups  # nothing left: the group is gone (Dead)
    env.reopen()
    assert env.offsets("g") == {}  # the expiry itself was durable


def test_simple_group_offsets_age_from_their_commit_and_explicit_retention_wins(env: Env) -> None:
    env.commit("simple", {("t", 0): 1})
    env.advance(30 * MINUTE)
    env.commit("simple", {("t", 1): 2})
    env.commit("simple", {("u", 0): 3}, retention_ms=5 * MINUTE)  # OffsetCommit v2-4 retention_time_ms
    env.advance(5 * MINUTE)
    assert env.offsets("simple") == {("t", 0): 1, ("t", 1): 2}
    env.advance(25 * MINUTE)
    assert env.offsets("simple") == {("t", 1): 2}
    env.advance(30 * MINUTE)
    assert env.offsets("simple") == {}


def test_stable_group_keeps_subscribed_offsets_and_drops_others(env: Env) -> None:
    env.commit("g", {("u", 0): 4})  # committed while the group was a simple group
    member, generation = env.member("g", topics=("t",))
    env.commit("g", {("t", 0): 10}, member=member, generation=generation)
    for _ in range((RETENTION_MINUTES + 1) * 12):
        env.advance(5_000)  # heartbeats well within the 10 s session
        assert env.coordinator.heartbeat("g", member, None, generation, env.now) is ErrorCode.NONE
    assert env.offsets("g") == {("t", 0): 10}  # ("u", 0) was not subscribed: expired


def test_lag_per_partition(env: Env) -> None:
    member, generation = env.member("g")
    env.commit("g", {("t", 0): 60}, member=member, generation=generation)
    env.commit("g", {("u", 0): 10}, member=member, generation=generation)
    rows = env.coordinator.group_lag("g")
    assert rows == [
        PartitionLag("t", 0, 60, 100, 40, member, "cli"),
        PartitionLag("t", 1, None, 50, None, member, "cli"),  # owned, nothing committed yet
        PartitionLag("u", 0, 10, 10, 0),
    ]
    del env.watermarks[("u", 0)]  # the topic was deleted
    env.watermarks[("t", 0)] = 50  # records before the committed offset were deleted
    rows = env.coordinator.group_lag("g")
    assert rows[0].lag == 0 and rows[2] == PartitionLag("u", 0, 10, None, None)
    with pytest.raises(KafkaApiError) as err:
        env.coordinator.group_lag("nobody")
    assert err.value.code is ErrorCode.GROUP_ID_NOT_FOUND


def test_groups_with_offsets_come_back_empty_after_a_restart(env: Env) -> None:
    member, generation = env.member("g")
    env.commit("g", {("t", 0): 7}, member=member, generation=generation)
    env.reopen()
    listed = env.coordinator.list_groups()
    assert [(g.group_id, g.state) for g in listed] == [("g", GroupState.EMPTY)]
    # The old member's next request tells it to rejoin.
    assert env.coordinator.heartbeat("g", member, None, generation, env.now) is ErrorCode.UNKNOWN_MEMBER_ID
    assert env.offsets("g") == {("t", 0): 7}


def test_delete_groups_and_offsets(env: Env) -> None:
    member, generation = env.member("busy")
    env.commit("idle", {("t", 0): 1, ("t", 1): 2})
    assert env.coordinator.delete_groups(["busy", "idle", "nobody", ""], env.now) == [
        ErrorCode.NON_EMPTY_GROUP,
        ErrorCode.NONE,
        ErrorCode.GROUP_ID_NOT_FOUND,
        ErrorCode.INVALID_GROUP_ID,
    ]
    assert env.offsets("idle") == {}
    env.commit("busy", {("t", 0): 1, ("u", 0): 1}, member=member, generation=generation)
    # A consumer group's subscribed topics are protected; others may go.
    assert env.coordinator.delete_offsets("busy", [("t", 0), ("u", 0), ("x", 0)], env.now) == (
        ErrorCode.NONE,
        [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    )
    assert env.offsets("busy") == {("t", 0): 1}
    assert env.coordinator.delete_offsets("nobody", [("t", 0)], env.now) == (ErrorCode.GROUP_ID_NOT_FOUND, [])
