"""The pure group logic, driven with explicit times: join and sync phases, timers, and the concurrency
bugs other Kafka-compatible brokers shipped (a second member joining mid-rebalance, SyncGroup without
assignment bytes, members stuck after the leader leaves mid-sync)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from riel.config import GroupConfig
from riel.coordinator.group import Completion, Group, JoinRequest, JoinResult, SyncResult
from riel.coordinator.state_machine import GroupState
from riel.errors import ErrorCode

SESSION = 10_000
REBALANCE = 30_000
DELAY = 100
T0 = 1_000_000


class World:
    """A group plus its outbox, with waiter tokens handed out in order."""

    def __init__(self, delay: int = DELAY) -> None:
        ids = itertools.count(1)
        self.outbox: list[Completion] = []
        self.group = Group(
            "g",
            T0,
            GroupConfig(initial_rebalance_delay_ms=delay),
            self.outbox,
            new_member_id=lambda prefix: f"{prefix}-{next(ids)}",
        )
        self._tokens: Iterator[int] = itertools.count(1)
        self.now = T0

    def token(self) -> int:
        return next(self._tokens)

    def take(self) -> dict[int, JoinResult | SyncResult]:
        done = dict(self.outbox)
        self.outbox.clear()
        return done

    def join(
        self,
        member_id: str = "",
        *,
        instance: str | None = None,
        protocols: tuple[str, ...] = ("range",),
        metadata: bytes = b"m",
        client: str = "c",
    ) -> tuple[int, JoinResult | None]:
        waiter = self.token()
        req = JoinRequest(
            member_id,
            instance,
            "consumer",
            tuple((p, metadata) for p in protocols),
            SESSION,
            REBALANCE,
            client,
            "/127.0.0.1",
            True,
        )
        return waiter, self.group.join(req, waiter, self.now)

    def new_member(self, client: str = "c", **kw: object) -> tuple[int, str]:
        """A dynamic member through the MEMBER_ID_REQUIRED round trip: (waiter, member id)."""
        _, first = self.join(client=client)
        assert first is not None and first.error is ErrorCode.MEMBER_ID_REQUIRED
        waiter, second = self.join(first.member_id, client=client, **kw)  # type: ignore[arg-type]
        assert second is None, second
        return waiter, first.member_id

    def finish_initial_delay(self) -> dict[int, JoinResult | SyncResult]:
        """Advance past the initial delay, which each window with a newcomer extends by one delay."""
        for _ in range(REBALANCE // DELAY):
            self.advance(DELAY)
            if self.group.state is not GroupState.PREPARING_REBALANCE:
                return self.take()
        raise AssertionError("the join phase never completed")

    def advance(self, ms: int) -> None:
        self.now += ms
        self.group.tick(self.now)

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        instance: str | None = None,
    ) -> tuple[int, SyncResult | None]:
        waiter = self.token()
        return waiter, self.group.sync(
            member_id, instance, generation, "consumer", None, assignments or {}, waiter, self.now
        )

    def stable_group(self, n: int) -> tuple[list[str], JoinResult]:
        """n members, joined, synced, Stable; returns member ids and the leader's join result."""
        waiters = [self.new_member(client=f"c{i}") for i in range(n)]
        done = self.finish_initial_delay()
        results = [done[w] for w, _ in waiters]
        assert all(isinstance(r, JoinResult) and r.error is ErrorCode.NONE for r in results)
        leader = next(r for r in results if isinstance(r, JoinResult) and r.members)
        assert isinstance(leader, JoinResult)
        ids = [mid for _, mid in waiters]
        sync_waiters = [self.sync(mid, leader.generation_id)[0] for mid in ids if mid != leader.member_id]
        _, leader_sync = self.sync(
            leader.member_id, leader.generation_id, {mid: f"a-{mid}".encode() for mid in ids}
        )
        assert leader_sync is None
        done2 = self.take()
        assert all(
            isinstance(done2[w], SyncResult) and done2[w].error is ErrorCode.NONE for w in sync_waiters
        )
        assert self.group.state is GroupState.STABLE
        return ids, leader


def test_first_member_waits_for_the_initial_delay_then_leads_alone() -> None:
    w = World()
    waiter, member_id = w.new_member()
    assert w.group.state is GroupState.PREPARING_REBALANCE
    w.advance(DELAY - 1)
    assert w.take() == {}
    w.advance(1)
    result = w.take()[waiter]
    assert isinstance(result, JoinResult)
    assert (result.error, result.member_id, result.leader_id, result.generation_id) == (
        ErrorCode.NONE,
        member_id,
        member_id,
        1,
    )
    assert result.protocol_name == "range" and [m.member_id for m in result.members] == [member_id]
    assert w.group.state is GroupState.COMPLETING_REBALANCE


def test_initial_delay_extends_while_members_arrive_but_not_past_the_rebalance_timeout() -> None:
    w = World(delay=1_000)
    first, _ = w.new_member()
    w.advance(500)
    second, _ = w.new_member()
    w.advance(500)  # first delay over, a member arrived during it: one more delay
    assert w.take() == {}
    w.advance(1_000)
    done = w.take()
    assert set(done) == {first, second}
    # Members that keep arriving cannot hold the group past the rebalance timeout.
    w2 = World(delay=10_000)
    waiters = [w2.new_member()[0]]
    done: dict[int, JoinResult | SyncResult] = {}
    for step in range(1, 40):
        w2.advance(1_000)  # the driver ticks at every deadline; 1 s steps are close enough
        done |= w2.take()
        if done:
            break
        if step % 9 == 0:
            waiters.append(w2.new_member()[0])
    assert set(done) == set(waiters)
    assert w2.now - T0 <= REBALANCE
    assert w2.group.generation_id == 1


def test_second_member_joining_during_a_rebalance_is_included_not_rejected() -> None:
    w = World()
    ids, leader = w.stable_group(2)
    # One member rejoins (a rebalance starts), a new member arrives meanwhile, then the other rejoins.
    rejoin_a, none = w.join(ids[0])
    assert none is None and w.group.state is GroupState.PREPARING_REBALANCE
    newcomer, new_id = w.new_member(client="late")
    assert w.take() == {}  # still waiting for ids[1]
    rejoin_b, _ = w.join(ids[1])
    done = w.take()
    assert set(done) == {rejoin_a, rejoin_b, newcomer}  # everyone joined: no waiting for a timeout
    results = {r.member_id: r for r in done.values() if isinstance(r, JoinResult)}
    assert all(r.error is ErrorCode.NONE for r in results.values())
    assert {r.generation_id for r in results.values()} == {leader.generation_id + 1}
    assert sorted(len(r.members) for r in results.values()) == [0, 0, 3]  # the leader sees all three
    assert new_id in results


def test_new_member_during_completing_rebalance_restarts_the_join_and_tells_syncers_to_rejoin() -> None:
    w = World()
    _, a = w.new_member()
    _, b = w.new_member()
    w.finish_initial_delay()
    assert w.group.state is GroupState.COMPLETING_REBALANCE
    follower = b if w.group.leader_id == a else a
    waiting, none = w.sync(follower, 1)
    assert none is None
    w.new_member(client="third")
    done = w.take()
    assert done[waiting] == SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
    assert w.group.state is GroupState.PREPARING_REBALANCE
    assert w.group.heartbeat(follower, None, 1, w.now) is ErrorCode.REBALANCE_IN_PROGRESS


def test_sync_always_returns_bytes_even_for_members_the_leader_left_out() -> None:
    w = World()
    (_, a), (_, b) = w.new_member(), w.new_member()
    joins = w.finish_initial_delay()
    leader = w.group.leader_id
    follower = b if leader == a else a
    fw, _ = w.sync(follower, 1)
    lw, _ = w.sync(leader or "", 1, {})  # the leader assigns nothing to anybody
    done = w.take()
    assert done[fw] == SyncResult(ErrorCode.NONE, b"", "consumer", "range")
    assert done[lw] == SyncResult(ErrorCode.NONE, b"", "consumer", "range")
    assert joins


def test_leader_leaving_mid_sync_releases_the_waiting_members() -> None:
    w = World()
    ids = [w.new_member(client=f"c{i}")[1] for i in range(3)]
    w.finish_initial_delay()
    leader = w.group.leader_id
    followers = [m for m in ids if m != leader]
    waiting = [w.sync(m, 1)[0] for m in followers]
    assert w.group.leave([(leader or "", None)], w.now) == [ErrorCode.NONE]
    done = w.take()
    assert [done[x] for x in waiting] == [SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)] * 2
    # They rejoin and form the next generation without the old leader.
    rejoins = [w.join(m)[0] for m in followers]
    done = w.take()
    results = [done[x] for x in rejoins]
    assert all(
        isinstance(r, JoinResult) and r.error is ErrorCode.NONE and r.generation_id == 2 for r in results
    )
    assert w.group.leader_id in followers


def test_leader_dying_mid_sync_is_removed_after_its_session_and_the_others_move_on() -> None:
    w = World()
    ids = [w.new_member(client=f"c{i}")[1] for i in range(2)]
    w.finish_initial_delay()
    follower = next(m for m in ids if m != w.group.leader_id)
    waiting, _ = w.sync(follower, 1)
    w.advance(SESSION)  # the leader never syncs nor heartbeats
    assert w.take()[waiting] == SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
    assert list(w.group.members) == [follower]
    rejoin, _ = w.join(follower)
    result = w.take()[rejoin]
    assert isinstance(result, JoinResult) and result.leader_id == follower and result.generation_id == 2


def test_session_expiry_removes_a_silent_member_and_heartbeats_keep_one_alive() -> None:
    w = World()
    ids, leader = w.stable_group(2)
    alive, silent = ids
    for _ in range(3):
        w.advance(SESSION // 4)
        assert w.group.heartbeat(alive, None, leader.generation_id, w.now) is ErrorCode.NONE
    w.advance(SESSION // 4)
    assert silent not in w.group.members and alive in w.group.members
    assert w.group.state is GroupState.PREPARING_REBALANCE
    assert w.group.heartbeat(alive, None, leader.generation_id, w.now) is ErrorCode.REBALANCE_IN_PROGRESS


def test_rebalance_timeout_drops_members_that_do_not_rejoin() -> None:
    w = World()
    ids, leader = w.stable_group(2)
    a, b = ids
    rejoin, _ = w.join(a)  # starts a rebalance; b heartbeats but never rejoins
    for _ in range(REBALANCE // 5_000):
        w.advance(5_000)
        w.group.heartbeat(b, None, leader.generation_id, w.now)
    result = w.take()[rejoin]
    assert isinstance(result, JoinResult) and result.error is ErrorCode.NONE
    assert list(w.group.members) == [a]


def test_last_member_leaving_empties_the_group_and_bumps_the_generation() -> None:
    w = World()
    ids, leader = w.stable_group(1)
    assert w.group.leave([(ids[0], None)], w.now) == [ErrorCode.NONE]
    assert w.group.state is GroupState.EMPTY
    assert w.group.generation_id == leader.generation_id + 1
    assert w.group.leave([(ids[0], None)], w.now) == [ErrorCode.UNKNOWN_MEMBER_ID]


def test_member_id_required_then_unknown_ids_are_refused_and_pending_ids_expire() -> None:
    w = World()
    _, first = w.join()
    assert first is not None and first.error is ErrorCode.MEMBER_ID_REQUIRED and first.member_id
    _, bogus = w.join("made-up")
    assert bogus is not None and bogus.error is ErrorCode.UNKNOWN_MEMBER_ID
    w.advance(SESSION)
    assert not w.group.pending_members
    _, late = w.join(first.member_id)
    assert late is not None and late.error is ErrorCode.UNKNOWN_MEMBER_ID


def test_errors_for_bad_generations_and_protocols() -> None:
    w = World()
    ids, leader = w.stable_group(2)
    gen = leader.generation_id
    assert w.group.heartbeat(ids[0], None, gen + 1, w.now) is ErrorCode.ILLEGAL_GENERATION
    assert w.group.heartbeat("nobody", None, gen, w.now) is ErrorCode.UNKNOWN_MEMBER_ID
    _, res = w.sync(ids[0], gen - 1)
    assert res == SyncResult(ErrorCode.ILLEGAL_GENERATION)
    _, res2 = w.join(protocols=("roundrobin",))
    assert res2 is not None and res2.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    req = JoinRequest("", None, "consumer", (("range", b""),), 1, REBALANCE)
    assert w.group.join(req, 99, w.now) == JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, "")


def test_follower_rejoining_stable_with_same_metadata_gets_the_current_generation_at_once() -> None:
    w = World()
    ids, leader = w.stable_group(2)
    follower = next(m for m in ids if m != leader.member_id)
    _, res = w.join(follower)
    assert res is not None and (res.error, res.generation_id, res.members) == (
        ErrorCode.NONE,
        leader.generation_id,
        (),
    )
    assert w.group.state is GroupState.STABLE


def test_protocol_vote_picks_the_protocol_all_members_support() -> None:
    w = World()
    w.new_member(protocols=("range", "roundrobin"))
    w.new_member(protocols=("roundrobin",))
    _, res = w.join(protocols=("sticky",))
    assert res is not None and res.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    w.finish_initial_delay()
    assert w.group.protocol_name == "roundrobin"


def test_static_member_rejoining_keeps_its_assignment_without_a_rebalance() -> None:
    w = World()
    waiters = [w.join(instance=f"i{k}", client=f"c{k}") for k in range(2)]
    assert all(res is None for _, res in waiters)  # no MEMBER_ID_REQUIRED for static members
    done = w.finish_initial_delay()
    members = {res.member_id: res for res in done.values() if isinstance(res, JoinResult)}
    leader = next(r for r in members.values() if r.members)
    for mid in members:
        w.sync(
            mid,
            leader.generation_id,
            {m: f"a-{m}".encode() for m in members} if mid == leader.member_id else None,
        )
    w.take()
    old_i1 = w.group.static_members["i1"]
    generation = w.group.generation_id
    # i1 restarts: it comes back without a member id, under its instance id.
    _, res = w.join(instance="i1", client="c1")
    assert res is not None and res.error is ErrorCode.NONE and res.member_id != old_i1
    assert w.group.state is GroupState.STABLE and w.group.generation_id == generation
    _, sync = w.sync(res.member_id, generation, instance="i1")
    assert sync is not None and sync.assignment == f"a-{old_i1}".encode()
    # The old incarnation is fenced.
    assert w.group.heartbeat(old_i1, "i1", generation, w.now) is ErrorCode.FENCED_INSTANCE_ID
    _, fenced = w.join(old_i1, instance="i1")
    assert fenced is not None and fenced.error is ErrorCode.FENCED_INSTANCE_ID
    other = w.group.static_members["i0"]
    assert w.group.heartbeat(other, "i0", generation, w.now) is ErrorCode.NONE


def test_static_member_replaced_while_waiting_fences_the_old_request() -> None:
    w = World()
    old_waiter, none = w.join(instance="i", client="old")
    assert none is None
    new_waiter, none2 = w.join(instance="i", client="new")
    done = w.take()
    assert isinstance(done[old_waiter], JoinResult) and done[old_waiter].error is ErrorCode.FENCED_INSTANCE_ID
    assert isinstance(w.finish_initial_delay()[new_waiter], JoinResult) and none2 is None


def test_static_member_not_rejoining_keeps_its_place_until_its_session_expires() -> None:
    w = World()
    for k in range(2):
        w.join(instance=f"i{k}")
    w.finish_initial_delay()
    a, b = w.group.static_members["i0"], w.group.static_members["i1"]
    rejoin, _ = w.join(a, instance="i0", protocols=("range", "x"))  # metadata change: rebalance
    assert w.group.state is GroupState.PREPARING_REBALANCE
    w.advance(SESSION)  # i1 is silent: its session ends first
    assert b not in w.group.members
    res = w.take()[rejoin]
    assert isinstance(res, JoinResult) and res.error is ErrorCode.NONE and res.generation_id == 2


def test_offset_commit_validation() -> None:
    w = World()
    assert w.group.validate_offset_commit("", None, -1, w.now) is ErrorCode.NONE  # admin, empty group
    ids, leader = w.stable_group(1)
    gen = leader.generation_id
    assert w.group.validate_offset_commit("", None, -1, w.now) is ErrorCode.UNKNOWN_MEMBER_ID
    assert w.group.validate_offset_commit(ids[0], None, gen, w.now) is ErrorCode.NONE
    assert w.group.validate_offset_commit(ids[0], None, gen + 1, w.now) is ErrorCode.ILLEGAL_GENERATION
    assert w.group.validate_offset_commit("x", None, gen, w.now) is ErrorCode.UNKNOWN_MEMBER_ID
    w.join(ids[0])
    assert w.group.state is GroupState.COMPLETING_REBALANCE  # the only member rejoined: done at once
    assert w.group.validate_offset_commit(ids[0], None, gen + 1, w.now) is ErrorCode.REBALANCE_IN_PROGRESS


@pytest.mark.parametrize("delay", [0, DELAY])
def test_zero_initial_delay_completes_as_soon_as_everyone_joined(delay: int) -> None:
    w = World(delay=delay)
    waiter, _ = w.new_member()
    if delay:
        assert w.take() == {}
        w.advance(delay)
    assert isinstance(w.take()[waiter], JoinResult)


def test_superseded_join_is_answered() -> None:
    w = World()
    ids, _ = w.stable_group(2)
    first, _ = w.join(ids[0], protocols=("range", "x"))
    second, _ = w.join(ids[0], protocols=("range", "x"))
    assert w.take() == {first: JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, ids[0])}
    assert second != first
