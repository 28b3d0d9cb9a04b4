"""The async face of the group coordinator: futures for delayed responses, and one timer task.

``GroupCoordinator`` is synchronous and takes the time as an argument; this driver supplies the time,
turns JoinGroup and SyncGroup into awaitables (a waiter token per request, mapped to a future), and
runs a single task that sleeps until the coordinator's next deadline (session, rebalance, initial
delay, offsets flush or expiry) or until a request may have moved that deadline, then ticks.

Kafka answers one request per connection at a time, and so does Riel's server: a JoinGroup waiting
here holds back later requests on the same connection. Clients expect that (they stop heartbeating
while a JoinGroup is in flight, and use a dedicated coordinator connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence

from riel.coordinator.coordinator import (
    GroupCoordinator,
    GroupOverview,
    OffsetCommitEntry,
    PartitionLag,
)
from riel.coordinator.group import GroupDescription, JoinRequest, JoinResult, SyncResult
from riel.coordinator.state_machine import GroupState
from riel.errors import ErrorCode
from riel.storage.offsets_store import CommittedOffset, TopicPartition

log = logging.getLogger(__name__)


class CoordinatorDriver:
    def __init__(self, coordinator: GroupCoordinator, clock_ms: Callable[[], int]) -> None:
        self.coordinator = coordinator
        self._clock_ms = clock_ms
        self._tokens = itertools.count(1)
        self._futures: dict[int, asyncio.Future[JoinResult | SyncResult]] = {}
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the timer task (needs a running event loop)."""
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-coordinator")

    async def stop(self) -> None:
        """Stop the timers, fail pending JoinGroup/SyncGroup waits, and close the offsets store."""
        if self._task is not None:
            # The flag, not just the cancellation: Python 3.11's wait_for swallows a cancellation that
            # races with the event it waits on being set (a request poked the timer just before).
            self._stopping = True
            self.poke()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for fut in self._futures.values():
            fut.cancel()
        self._futures.clear()
        self.coordinator.close()

    def poke(self) -> None:
        """Make the timer task re-read the clock and the deadlines now (tests with a manual clock)."""
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while not self._stopping:
            now = self._clock_ms()
            try:
                self.coordinator.tick(now)
            except Exception:
                log.exception("group coordinator timer failed; continuing")
            self._deliver()
            deadline = self.coordinator.next_deadline_ms()
            timeout = None if deadline is None else max(0, deadline - now) / 1000
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _deliver(self) -> None:
        outbox = self.coordinator.outbox
        ready = list(outbox)
        outbox.clear()
        for token, result in ready:
            fut = self._futures.pop(token, None)
            # A future may be gone or cancelled: its connection closed while it waited.
            if fut is not None and not fut.done():
                fut.set_result(result)

    def _after_call(self) -> None:
        self._deliver()
        # The call may have moved a deadline earlier (a new rebalance, a new member's session).
        self.poke()

    async def _await(self, call: Callable[[int], JoinResult | SyncResult | None]) -> JoinResult | SyncResult:
        token = next(self._tokens)
        fut: asyncio.Future[JoinResult | SyncResult] = asyncio.get_running_loop().create_future()
        self._futures[token] = fut
        try:
            result = call(token)
        except BaseException:
            self._futures.pop(token, None)
            raise
        finally:
            self._after_call()
        if result is not None:
            self._futures.pop(token, None)
            return result
        try:
            return await fut
        finally:
            self._futures.pop(token, None)

    # ------------------------------------------------------------------------------ requests

    async def join(self, group_id: str, req: JoinRequest) -> JoinResult:
        result = await self._await(lambda w: self.coordinator.join(group_id, req, w, self._clock_ms()))
        assert isinstance(result, JoinResult)
        return result

    async def sync(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
    ) -> SyncResult:
        result = await self._await(
            lambda w: self.coordinator.sync(
                group_id,
                member_id,
                group_instance_id,
                generation_id,
                protocol_type,
                protocol_name,
                assignments,
                w,
                self._clock_ms(),
            )
        )
        assert isinstance(result, SyncResult)
        return result

    def heartbeat(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int
    ) -> ErrorCode:
        try:
            return self.coordinator.heartbeat(
                group_id, member_id, group_instance_id, generation_id, self._clock_ms()
            )
        finally:
            self._after_call()

    def leave(
        self, group_id: str, members: Sequence[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        try:
            return self.coordinator.leave(group_id, members, self._clock_ms())
        finally:
            self._after_call()

    def commit_offsets(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        entries: Sequence[OffsetCommitEntry],
        retention_ms: int | None = None,
    ) -> list[ErrorCode]:
        try:
            return self.coordinator.commit_offsets(
                group_id,
                member_id,
                group_instance_id,
                generation_id,
                entries,
                self._clock_ms(),
                retention_ms=retention_ms,
            )
        finally:
            self._after_call()

    def validate_member(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int
    ) -> ErrorCode:
        return self.coordinator.validate_member(
            group_id, member_id, group_instance_id, generation_id, self._clock_ms()
        )

    def fetch_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition] | None
    ) -> list[tuple[TopicPartition, CommittedOffset | None]]:
        return self.coordinator.fetch_offsets(group_id, partitions)

    def delete_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        return self.coordinator.delete_offsets(group_id, partitions, self._clock_ms())

    def list_groups(self, states: Sequence[GroupState] | None = None) -> list[GroupOverview]:
        return self.coordinator.list_groups(states)

    def describe_group(self, group_id: str) -> GroupDescription | None:
        return self.coordinator.describe_group(group_id)

    def delete_groups(self, group_ids: Sequence[str]) -> list[ErrorCode]:
        try:
            return self.coordinator.delete_groups(group_ids, self._clock_ms())
        finally:
            self._after_call()

    def group_lag(self, group_id: str) -> list[PartitionLag]:
        return self.coordinator.group_lag(group_id)
