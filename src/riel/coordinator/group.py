"""One classic consumer group: members, generations, the join and sync phases, and their timers.

This follows Kafka's ``ClassicGroup``/``GroupCoordinator`` closely, because clients were written against
its exact behaviour. Pure: every method takes the current time, nothing here sleeps, does I/O or knows
about asyncio. Requests that must wait (JoinGroup until the join phase completes, SyncGroup until the
leader hands in the assignment) are given a *waiter* token by the caller; when the wait is over the
group appends ``(token, result)`` to its ``outbox`` and the async driver answers the request. Every
state change goes through ``riel.coordinator.state_machine.transition``.

Timers are deadlines (``next_deadline``) that ``tick`` fires:

- join deadline (PreparingRebalance): the initial rebalance delay of an empty group (extended while
  new members keep arriving, up to the rebalance timeout), or the rebalance timeout otherwise;
- sync deadline: members that have not sent SyncGroup within the rebalance timeout after the join
  phase are removed (so a leader that dies mid-sync cannot leave the others waiting forever);
- member sessions: a member not waiting on a join or sync response must heartbeat (or commit, join,
  sync) within its session timeout, else it is removed;
- pending members: ids handed out with MEMBER_ID_REQUIRED expire if not used within the session timeout.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from riel.config import GroupConfig
from riel.coordinator.state_machine import GroupEvent, GroupState, transition
from riel.errors import ErrorCode

Waiter = int  # an opaque token chosen by the caller; the driver maps it to a future


@dataclass(frozen=True, slots=True)
class JoinRequest:
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]  # (name, metadata) in the member's order of preference
    session_timeout_ms: int
    rebalance_timeout_ms: int
    client_id: str = ""
    client_host: str = ""
    require_known_member_id: bool = True  # JoinGroup v4+: KIP-394's MEMBER_ID_REQUIRED round trip


@dataclass(frozen=True, slots=True)
class JoinedMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    members: tuple[JoinedMember, ...] = ()  # only the leader gets them


@dataclass(frozen=True, slots=True)
class SyncResult:
    error: ErrorCode
    # Never None: a member the leader left out gets an empty assignment, as in Kafka (clients that got
    # no bytes at all have been seen to crash or to hang).
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


Completion = tuple[Waiter, JoinResult | SyncResult]


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: GroupState
    protocol_type: str
    protocol_name: str
    members: tuple[MemberDescription, ...]


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    last_heartbeat_ms: int
    assignment: bytes = b""
    join_waiter: Waiter | None = None
    sync_waiter: Waiter | None = None

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def session_deadline(self) -> int | None:
        # A member waiting on a join or sync response cannot heartbeat on that connection (Kafka
        # answers one request per connection at a time), so its session is not held against it; the
        # join and sync deadlines bound those waits instead.
        if self.join_waiter is not None or self.sync_waiter is not None:
            return None
        return self.last_heartbeat_ms + self.session_timeout_ms


def random_member_id(prefix: str) -> str:
    """Kafka's format: the client id (or group.instance.id) and a UUID."""
    return f"{prefix}-{uuid.uuid4()}"


class Group:
    """State of one group. Not thread-safe; the coordinator calls it from one event-loop thread."""

    def __init__(
        self,
        group_id: str,
        now_ms: int,
        config: GroupConfig,
        outbox: list[Completion],
        *,
        new_member_id: Callable[[str], str] = random_member_id,
    ) -> None:
        self.group_id = group_id
        self.config = config
        self.outbox = outbox
        self._new_member_id = new_member_id
        self.state = GroupState.EMPTY
        self.state_since_ms = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}  # group.instance.id -> member id
        self.pending_members: dict[str, int] = {}  # member id handed out -> expiry deadline
        self.pending_sync: set[str] = set()
        self.join_deadline_ms: int | None = None
        self.sync_deadline_ms: int | None = None
        self._in_initial_delay = False
        self._initial_delay_remaining_ms = 0
        self._new_member_added = False

    # ------------------------------------------------------------------------------------------
    # Queries

    def is_empty(self) -> bool:
        """No members and nobody about to become one."""
        return not self.members and not self.pending_members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def describe(self) -> GroupDescription:
        stable = self.state is GroupState.STABLE
        members = tuple(
            MemberDescription(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                # Kafka describes metadata and assignment only once they are settled (Stable).
                m.metadata_for(self.protocol_name) if stable else b"",
                m.assignment if stable else b"",
            )
            for m in self.members.values()
        )
        return GroupDescription(
            self.group_id,
            self.state,
            self.protocol_type or "",
            (self.protocol_name or "") if stable else "",
            members,
        )

    def next_deadline(self) -> int | None:
        deadlines: list[int] = []
        if self.state is GroupState.PREPARING_REBALANCE and self.join_deadline_ms is not None:
            deadlines.append(self.join_deadline_ms)
        if self.sync_deadline_ms is not None:
            deadlines.append(self.sync_deadline_ms)
        deadlines.extend(self.pending_members.values())
        for member in self.members.values():
            deadline = member.session_deadline()
            if deadline is not None:
                deadlines.append(deadline)
        return min(deadlines, default=None)

    # ------------------------------------------------------------------------------------------
    # JoinGroup

    def join(self, req: JoinRequest, waiter: Waiter, now_ms: int) -> JoinResult | None:
        """The response now, or None: it will be posted to the outbox under ``waiter``."""
        if self.state is GroupState.DEAD:
            return JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, req.member_id)
        if not (
            self.config.min_session_timeout_ms <= req.session_timeout_ms <= self.config.max_session_timeout_ms
        ):
            return JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, req.member_id)
        if not self._supports(req.protocol_type, [name for name, _ in req.protocols]):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, req.member_id)
        if req.member_id == "":
            return self._join_unknown_member(req, waiter, now_ms)
        return self._join_known_member(req, waiter, now_ms)

    def _supports(self, protocol_type: str, names: Sequence[str]) -> bool:
        if not protocol_type or not names:
            return False
        if not self.members:
            return True
        return protocol_type == self.protocol_type and any(n in self._candidate_protocols() for n in names)

    def _candidate_protocols(self) -> set[str]:
        """Protocols every member supports."""
        counts = Counter(n for m in self.members.values() for n in set(m.protocol_names()))
        return {name for name, count in counts.items() if count == len(self.members)}

    def _join_unknown_member(self, req: JoinRequest, waiter: Waiter, now_ms: int) -> JoinResult | None:
        if req.group_instance_id is not None:
            new_id = self._new_member_id(req.group_instance_id)
            old_id = self.static_members.get(req.group_instance_id)
            if old_id is not None and old_id in self.members:
                return self._replace_static_member(old_id, new_id, req, waiter, now_ms)
            # KIP-394 does not apply to static members: the instance id already identifies them.
            return self._add_member_and_rebalance(new_id, req, waiter, now_ms)
        new_id = self._new_member_id(req.client_id or "member")
        if req.require_known_member_id:
            # The client must come back with this id; until it does (or the session timeout passes)
            # it counts as a member the join phase waits for.
            self.pending_members[new_id] = now_ms + req.session_timeout_ms
            return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, new_id)
        return self._add_member_and_rebalance(new_id, req, waiter, now_ms)

    def _join_known_member(self, req: JoinRequest, waiter: Waiter, now_ms: int) -> JoinResult | None:
        member_id = req.member_id
        if member_id in self.pending_members and member_id not in self.members:
            del self.pending_members[member_id]
            return self._add_member_and_rebalance(member_id, req, waiter, now_ms)
        if self._is_fenced(member_id, req.group_instance_id):
            return JoinResult(ErrorCode.FENCED_INSTANCE_ID, member_id)
        member = self.members.get(member_id)
        if member is None:
            return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id)
        member.last_heartbeat_ms = now_ms
        if self.state is GroupState.PREPARING_REBALANCE:
            return self._update_member_and_rebalance(member, req, waiter, now_ms)
        if self.state is GroupState.COMPLETING_REBALANCE:
            if member.protocols == req.protocols:
                # The member missed the response of this generation (it retried): send it again.
                return self._join_response(member)
            return self._update_member_and_rebalance(member, req, waiter, now_ms)
        if self.state is GroupState.STABLE:
            if member_id == self.leader_id or member.protocols != req.protocols:
                # A rejoining leader may have seen a metadata change the others have not.
                return self._update_member_and_rebalance(member, req, waiter, now_ms)
            return self._join_response(member)
        return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id)  # Empty groups have no members

    def _is_fenced(self, member_id: str, instance_id: str | None) -> bool:
        """A static member id that is no longer the current one for its instance id (KIP-345)."""
        if instance_id is None:
            return False
        current = self.static_members.get(instance_id)
        return current is not None and current != member_id

    def _add_member_and_rebalance(
        self, member_id: str, req: JoinRequest, waiter: Waiter, now_ms: int
    ) -> JoinResult | None:
        if not self.members:
            self.protocol_type = req.protocol_type
        self.members[member_id] = Member(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=req.protocols,
            last_heartbeat_ms=now_ms,
            join_waiter=waiter,
        )
        if req.group_instance_id is not None:
            self.static_members[req.group_instance_id] = member_id
        if self.leader_id is None:
            self.leader_id = member_id
        if self._in_initial_delay:
            self._new_member_added = True
        self._rebalance_or_try_complete_join(now_ms)
        return None

    def _update_member_and_rebalance(
        self, member: Member, req: JoinRequest, waiter: Waiter, now_ms: int
    ) -> JoinResult | None:
        self._supersede_join_waiter(member)
        member.protocols = req.protocols
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.client_id = req.client_id
        member.client_host = req.client_host
        member.join_waiter = waiter
        self._rebalance_or_try_complete_join(now_ms)
        return None

    def _supersede_join_waiter(self, member: Member) -> None:
        # The member sent JoinGroup again (on another connection) while one was waiting: answer the
        # old one so that no request is left without a response.
        if member.join_waiter is not None:
            self.outbox.append(
                (member.join_waiter, JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))
            )
            member.join_waiter = None

    def _replace_static_member(
        self, old_id: str, new_id: str, req: JoinRequest, waiter: Waiter, now_ms: int
    ) -> JoinResult | None:
        old = self.members.pop(old_id)
        # Whoever still waits under the old id is a zombie of this instance: fence it right away.
        if old.join_waiter is not None:
            self.outbox.append((old.join_waiter, JoinResult(ErrorCode.FENCED_INSTANCE_ID, old_id)))
        if old.sync_waiter is not None:
            self.outbox.append((old.sync_waiter, SyncResult(ErrorCode.FENCED_INSTANCE_ID)))
        member = replace(
            old,
            member_id=new_id,
            client_id=req.client_id,
            client_host=req.client_host,
            protocols=req.protocols,
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            last_heartbeat_ms=now_ms,
            join_waiter=None,
            sync_waiter=None,
        )
        self.members[new_id] = member
        assert req.group_instance_id is not None
        self.static_members[req.group_instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        if self.state is GroupState.STABLE and self._select_protocol() == self.protocol_name:
            # KIP-345: a static member that comes back keeps its assignment and the others are not
            # disturbed. The leader gets the member list (JoinGroup v7 has no skip-assignment flag) and
            # will sync; in Stable its sync is answered with the stored assignment.
            return self._join_response(member)
        member.join_waiter = waiter
        if self.state is GroupState.PREPARING_REBALANCE:
            self._fire(GroupEvent.MEMBER_JOINED, now_ms)
            self._try_complete_join(now_ms)
        else:
            # Completing: the leader may be assigning to the old id, so only a new generation is
            # consistent. Stable with a different protocol choice: likewise.
            self._prepare_rebalance(GroupEvent.MEMBER_JOINED, now_ms)
        return None

    def _join_response(self, member: Member) -> JoinResult:
        is_leader = member.member_id == self.leader_id
        return JoinResult(
            ErrorCode.NONE,
            member.member_id,
            self.generation_id,
            self.protocol_type,
            self.protocol_name,
            self.leader_id or "",
            self._member_list() if is_leader else (),
        )

    def _member_list(self) -> tuple[JoinedMember, ...]:
        return tuple(
            JoinedMember(m.member_id, m.group_instance_id, m.metadata_for(self.protocol_name))
            for m in self.members.values()
        )

    # ------------------------------------------------------------------------------------------
    # Rebalance phases

    def _fire(self, event: GroupEvent, now_ms: int) -> None:
        new_state = transition(self.state, event)
        if new_state is not self.state:
            self.state = new_state
            self.state_since_ms = now_ms

    def _rebalance_or_try_complete_join(self, now_ms: int) -> None:
        if self.state is GroupState.PREPARING_REBALANCE:
            self._fire(GroupEvent.MEMBER_JOINED, now_ms)
            self._try_complete_join(now_ms)
        else:
            self._prepare_rebalance(GroupEvent.MEMBER_JOINED, now_ms)

    def _prepare_rebalance(self, event: GroupEvent, now_ms: int) -> None:
        if self.state is GroupState.COMPLETING_REBALANCE:
            # Members waiting for their assignment must rejoin: the assignment being computed is
            # for a membership that no longer exists.
            self._fail_syncs(ErrorCode.REBALANCE_IN_PROGRESS)
        was_empty = self.state is GroupState.EMPTY
        self._fire(event, now_ms)
        self.pending_sync.clear()
        self.sync_deadline_ms = None
        rebalance_timeout = self.rebalance_timeout_ms()
        delay = min(self.config.initial_rebalance_delay_ms, rebalance_timeout)
        if was_empty and delay > 0:
            # group.initial.rebalance.delay.ms: give the other members of a group that is starting up
            # a moment to join, so the group does not rebalance once per arriving member.
            self._in_initial_delay = True
            self._new_member_added = False
            self._initial_delay_remaining_ms = rebalance_timeout - delay
            self.join_deadline_ms = now_ms + delay
            return
        self._in_initial_delay = False
        self.join_deadline_ms = now_ms + rebalance_timeout
        self._try_complete_join(now_ms)

    def _try_complete_join(self, now_ms: int) -> None:
        if self.state is not GroupState.PREPARING_REBALANCE or self._in_initial_delay:
            return
        everyone_joined = all(m.join_waiter is not None for m in self.members.values())
        if everyone_joined and not self.pending_members:
            self._complete_join(now_ms)

    def _join_deadline_passed(self, now_ms: int) -> None:
        if self._in_initial_delay and self._new_member_added and self._initial_delay_remaining_ms > 0:
            delay = min(self.config.initial_rebalance_delay_ms, self._initial_delay_remaining_ms)
            self._initial_delay_remaining_ms -= delay
            self._new_member_added = False
            self.join_deadline_ms = now_ms + delay
            return
        self._in_initial_delay = False
        self._complete_join(now_ms)

    def _complete_join(self, now_ms: int) -> None:
        # Dynamic members that did not rejoin in time are gone; static ones keep their place until
        # their session expires (KIP-345), so a restarting static member does not cause a rebalance.
        for member in list(self.members.values()):
            if member.join_waiter is None and member.group_instance_id is None:
                self._drop_member(member)
        if self.members and all(m.join_waiter is None for m in self.members.values()):
            # Only static members that have not rejoined: wait another rebalance timeout (or until
            # their sessions expire) rather than form a generation nobody is listening to.
            self.join_deadline_ms = now_ms + self.rebalance_timeout_ms()
            return
        if self.leader_id is None or self.members[self.leader_id].join_waiter is None:
            self.leader_id = next(
                (m.member_id for m in self.members.values() if m.join_waiter is not None), None
            )
        self.generation_id += 1
        self.join_deadline_ms = None
        if not self.members:
            self.protocol_name = None
            self.leader_id = None
            self._fire(GroupEvent.JOIN_COMPLETED_EMPTY, now_ms)
            return
        self.protocol_name = self._select_protocol()
        self._fire(GroupEvent.JOIN_COMPLETED, now_ms)
        self.pending_sync = set(self.members)
        self.sync_deadline_ms = now_ms + self.rebalance_timeout_ms()
        for member in self.members.values():
            member.last_heartbeat_ms = now_ms
            if member.join_waiter is not None:
                self.outbox.append((member.join_waiter, self._join_response(member)))
                member.join_waiter = None

    def _select_protocol(self) -> str | None:
        """Kafka's vote: each member names its most preferred protocol that everyone supports."""
        candidates = self._candidate_protocols()
        if not candidates:
            return None
        votes: Counter[str] = Counter()
        for member in self.members.values():
            choice = next((n for n in member.protocol_names() if n in candidates), None)
            if choice is not None:
                votes[choice] += 1
        # Ties go to the protocol the leader prefers, so the outcome does not depend on dict order.
        leader = self.members.get(self.leader_id or "") or next(iter(self.members.values()))
        best = max(votes.values())
        return next(n for n in leader.protocol_names() if votes.get(n) == best)

    def _fail_syncs(self, error: ErrorCode) -> None:
        for member in self.members.values():
            member.assignment = b""
            if member.sync_waiter is not None:
                self.outbox.append((member.sync_waiter, SyncResult(error)))
                member.sync_waiter = None

    # ------------------------------------------------------------------------------------------
    # SyncGroup

    def sync(
        self,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
        waiter: Waiter,
        now_ms: int,
    ) -> SyncResult | None:
        if self.state is GroupState.DEAD:
            return SyncResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if self._is_fenced(member_id, group_instance_id):
            return SyncResult(ErrorCode.FENCED_INSTANCE_ID)
        member = self.members.get(member_id)
        if member is None:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        if generation_id != self.generation_id:
            return SyncResult(ErrorCode.ILLEGAL_GENERATION)
        if (protocol_type is not None and protocol_type != self.protocol_type) or (
            protocol_name is not None and protocol_name != self.protocol_name
        ):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        member.last_heartbeat_ms = now_ms
        if self.state is GroupState.PREPARING_REBALANCE:
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        if self.state is GroupState.STABLE:
            self._synced(member_id)
            return self._sync_response(member)
        if self.state is not GroupState.COMPLETING_REBALANCE:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        if member.sync_waiter is not None:
            self.outbox.append((member.sync_waiter, SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)))
        member.sync_waiter = waiter
        self._synced(member_id)
        if member_id == self.leader_id:
            for m in self.members.values():
                # Members the leader left out get an empty assignment, never none at all.
                m.assignment = assignments.get(m.member_id, b"")
            self._fire(GroupEvent.ASSIGNMENT_RECEIVED, now_ms)
            for m in self.members.values():
                if m.sync_waiter is not None:
                    m.last_heartbeat_ms = now_ms
                    self.outbox.append((m.sync_waiter, self._sync_response(m)))
                    m.sync_waiter = None
        return None

    def _synced(self, member_id: str) -> None:
        self.pending_sync.discard(member_id)
        if not self.pending_sync:
            self.sync_deadline_ms = None

    def _sync_response(self, member: Member) -> SyncResult:
        return SyncResult(ErrorCode.NONE, member.assignment, self.protocol_type, self.protocol_name)

    # ------------------------------------------------------------------------------------------
    # Heartbeat, LeaveGroup, offset commits

    def heartbeat(
        self, member_id: str, group_instance_id: str | None, generation_id: int, now_ms: int
    ) -> ErrorCode:
        if self.state is GroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if self._is_fenced(member_id, group_instance_id):
            return ErrorCode.FENCED_INSTANCE_ID
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation_id != self.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        member.last_heartbeat_ms = now_ms
        if self.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS  # the way a member learns it must rejoin
        # Completing: a member may heartbeat between its JoinGroup and SyncGroup responses.
        return ErrorCode.NONE

    def leave(self, leaving: Sequence[tuple[str, str | None]], now_ms: int) -> list[ErrorCode]:
        """LeaveGroup for (member id, group instance id) pairs; an empty member id with an instance
        id removes that static member (the admin client's removeMembersFromConsumerGroup)."""
        errors: list[ErrorCode] = []
        removed: list[Member] = []
        for member_id, instance_id in leaving:
            if self.state is GroupState.DEAD:
                errors.append(ErrorCode.COORDINATOR_NOT_AVAILABLE)
                continue
            if member_id == "":
                current = self.static_members.get(instance_id) if instance_id is not None else None
                member = self.members.get(current) if current is not None else None
                if member is None:
                    errors.append(ErrorCode.UNKNOWN_MEMBER_ID)
                    continue
            elif member_id in self.pending_members:
                del self.pending_members[member_id]
                errors.append(ErrorCode.NONE)
                continue
            elif self._is_fenced(member_id, instance_id):
                errors.append(ErrorCode.FENCED_INSTANCE_ID)
                continue
            else:
                found = self.members.get(member_id)
                if found is None:
                    errors.append(ErrorCode.UNKNOWN_MEMBER_ID)
                    continue
                member = found
            self._drop_member(member)
            removed.append(member)
            errors.append(ErrorCode.NONE)
        self._after_removal(bool(removed), now_ms)
        return errors

    def validate_offset_commit(
        self, member_id: str, group_instance_id: str | None, generation_id: int, now_ms: int
    ) -> ErrorCode:
        """Whether a commit from this member at this generation may be stored (Kafka's rules)."""
        if self.state is GroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and self.state is GroupState.EMPTY:
            return ErrorCode.NONE  # the admin client, or a consumer that assigns partitions itself
        if generation_id >= 0 or member_id or group_instance_id is not None:
            if group_instance_id is not None:
                current = self.static_members.get(group_instance_id)
                if current is None:
                    return ErrorCode.UNKNOWN_MEMBER_ID
                if current != member_id:
                    return ErrorCode.FENCED_INSTANCE_ID
            member = self.members.get(member_id)
            if member is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if generation_id != self.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
            member.last_heartbeat_ms = now_ms
        elif self.state is not GroupState.EMPTY:
            # Without member id and generation, commits are accepted only while nobody consumes.
            return ErrorCode.UNKNOWN_MEMBER_ID
        if self.state is GroupState.COMPLETING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def delete(self, now_ms: int) -> None:
        """DeleteGroups or expiry; the caller checked that the group is empty."""
        self._fire(GroupEvent.GROUP_DELETED, now_ms)

    # ------------------------------------------------------------------------------------------
    # Removing members, timers

    def _drop_member(self, member: Member) -> None:
        """Forget a member and answer whatever it waits on; the caller updates the state."""
        if member.join_waiter is not None:
            self.outbox.append(
                (member.join_waiter, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member.member_id))
            )
            member.join_waiter = None
        if member.sync_waiter is not None:
            self.outbox.append((member.sync_waiter, SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)))
            member.sync_waiter = None
        del self.members[member.member_id]
        if (
            member.group_instance_id is not None
            and self.static_members.get(member.group_instance_id) == member.member_id
        ):
            del self.static_members[member.group_instance_id]
        self.pending_sync.discard(member.member_id)
        if not self.pending_sync:
            self.sync_deadline_ms = None
        if self.leader_id == member.member_id:
            self.leader_id = next(iter(self.members), None)

    def _after_removal(self, removed: bool, now_ms: int) -> None:
        if self.state is GroupState.PREPARING_REBALANCE:
            if removed:
                self._fire(GroupEvent.MEMBER_REMOVED, now_ms)
            # A removed member (or a pending one) may have been the last the join phase waited for.
            self._try_complete_join(now_ms)
        elif removed and self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(GroupEvent.MEMBER_REMOVED, now_ms)

    def tick(self, now_ms: int) -> None:
        """Fire every timer that is due at ``now_ms``."""
        expired_pending = [mid for mid, deadline in self.pending_members.items() if deadline <= now_ms]
        for mid in expired_pending:
            del self.pending_members[mid]
        dead = {
            m.member_id
            for m in self.members.values()
            if (d := m.session_deadline()) is not None and d <= now_ms
        }
        if self.sync_deadline_ms is not None and self.sync_deadline_ms <= now_ms:
            self.sync_deadline_ms = None
            dead.update(mid for mid in self.pending_sync if mid in self.members)
            self.pending_sync.clear()
        for member_id in dead:
            self._drop_member(self.members[member_id])
        if dead or expired_pending:
            self._after_removal(bool(dead), now_ms)
        if (
            self.state is GroupState.PREPARING_REBALANCE
            and self.join_deadline_ms is not None
            and self.join_deadline_ms <= now_ms
        ):
            self._join_deadline_passed(now_ms)
