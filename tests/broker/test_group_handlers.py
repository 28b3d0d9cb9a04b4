"""Group APIs driven in-process through the real codec (request bytes in, response bytes out), every
advertised version, plus the error paths and races that real clients rarely hit on purpose.

Each test runs on its own event loop with the coordinator's timer task running on a manual clock, so
timeouts are exact and nothing sleeps for real longer than a few event-loop turns.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from riel.broker.context import BrokerContext
from riel.broker.router import Router, served_apis
from riel.config import TOPIC_CONFIG_DEFAULTS, BrokerConfig, FlushPolicy, GroupConfig
from riel.coordinator.coordinator import GroupCoordinator
from riel.coordinator.driver import CoordinatorDriver
from riel.errors import ErrorCode
from riel.protocol.apis import APIS
from riel.protocol.headers import decode_request, decode_response, encode_request, encode_response
from riel.storage.log_manager import LogManager
from riel.storage.offsets_store import OffsetsStore
from riel.storage.producer_ids import ProducerIdAllocator

T0 = 1_700_000_000_000
SESSION = 10_000
DELAY = 100  # the initial rebalance delay: members joining together form one generation
JOIN, HEARTBEAT, LEAVE, SYNC, DESCRIBE, LIST, FIND = 11, 12, 13, 14, 15, 16, 10
COMMIT, FETCH, DELETE_GROUPS, OFFSET_DELETE = 8, 9, 42, 47
Body = dict[str, Any]


class Broker:
    def __init__(self, data_dir: Path) -> None:
        self.now = T0
        self.config = BrokerConfig(
            data_dir=data_dir,
            flush=FlushPolicy.parse("os"),
            port=9999,
            groups=GroupConfig(initial_rebalance_delay_ms=DELAY),
        )
        self.log = LogManager(data_dir, self.config.flush, dict(TOPIC_CONFIG_DEFAULTS))
        self.log.open()
        self.log.create_topic("t", 2)
        self.store = OffsetsStore(data_dir, self.config.flush)
        self.store.open()
        coordinator = GroupCoordinator(self.config.groups, self.store, self._hw, self.now)
        self.driver = CoordinatorDriver(coordinator, lambda: self.now)
        self.router = Router(
            BrokerContext(self.config, self.log, ProducerIdAllocator(data_dir / "pids"), self.driver)
        )
        self._correlation = itertools.count(1)

    def _hw(self, topic: str, partition: int) -> int | None:
        plog = self.log.partition(topic, partition)
        return None if plog is None else plog.high_watermark

    async def call(self, api_key: int, version: int, body: Body) -> Body:
        api = APIS[api_key]
        correlation = next(self._correlation)
        request = decode_request(encode_request(api, version, correlation, "test-client", body)[4:])
        response = await self.router.handle(request)
        assert response is not None
        raw = b"".join(bytes(c) for c in encode_response(request, response))  # type: ignore[arg-type]
        got_correlation, decoded = decode_response(api, version, raw[4:])
        assert got_correlation == correlation
        return decoded

    async def advance(self, ms: int) -> None:
        for _ in range(5):  # let requests already sent reach the coordinator at the current time
            await asyncio.sleep(0)
        self.now += ms
        self.driver.poke()
        for _ in range(5):
            await asyncio.sleep(0)

    # --- request builders -------------------------------------------------------------------
    async def join(
        self,
        group: str,
        member_id: str = "",
        version: int = 7,
        instance: str | None = None,
        protocols: tuple[str, ...] = ("range",),
    ) -> Body:
        return await self.call(
            JOIN,
            version,
            {
                "group_id": group,
                "session_timeout_ms": SESSION,
                "rebalance_timeout_ms": 20_000,
                "member_id": member_id,
                "group_instance_id": instance,
                "protocol_type": "consumer",
                "protocols": [{"name": p, "metadata": f"meta-{p}".encode()} for p in protocols],
            },
        )

    async def join_new(self, group: str, version: int = 7) -> Body:
        """JoinGroup, repeating it with the assigned id when the broker asks (v4+)."""
        first = await self.join(group, version=version)
        if first["error_code"] == ErrorCode.MEMBER_ID_REQUIRED:
            assert version >= 4
            return await self.join(group, first["member_id"], version)
        return first

    async def joined_together(self, group: str, n: int, version: int = 7) -> list[Body]:
        """n new members join at the same time; the clock runs until their JoinGroups are answered."""
        tasks = [asyncio.create_task(self.join_new(group, version)) for _ in range(n)]
        for _ in range(100):
            await self.advance(DELAY)
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
        raise AssertionError("the join phase never completed")

    async def sync(
        self,
        group: str,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        version: int = 5,
        instance: str | None = None,
    ) -> Body:
        return await self.call(
            SYNC,
            version,
            {
                "group_id": group,
                "generation_id": generation,
                "member_id": member_id,
                "group_instance_id": instance,
                "protocol_type": "consumer",
                "protocol_name": "range",
                "assignments": [{"member_id": m, "assignment": a} for m, a in (assignments or {}).items()],
            },
        )

    async def heartbeat(
        self, group: str, member_id: str, generation: int, version: int = 4, instance: str | None = None
    ) -> int:
        resp = await self.call(
            HEARTBEAT,
            version,
            {
                "group_id": group,
                "generation_id": generation,
                "member_id": member_id,
                "group_instance_id": instance,
            },
        )
        return int(resp["error_code"])

    async def stable(self, group: str, n: int = 1) -> list[Body]:
        """n members joined concurrently and synced; their join responses (leader first)."""
        joins = await self.joined_together(group, n)
        joins.sort(key=lambda j: j["leader"] != j["member_id"])
        assert all(j["error_code"] == 0 for j in joins), joins
        generation = joins[0]["generation_id"]
        assignments = {j["member_id"]: f"assigned-{i}".encode() for i, j in enumerate(joins)}
        syncs = await asyncio.gather(
            *(
                self.sync(group, j["member_id"], generation, assignments if i == 0 else None)
                for i, j in enumerate(joins)
            )
        )
        assert [s["assignment"] for s in syncs] == list(assignments.values())
        return joins


def run(data_dir: Path, scenario: Callable[[Broker], Awaitable[None]]) -> None:
    async def main() -> None:
        broker = Broker(data_dir)
        broker.driver.start()
        try:
            await asyncio.wait_for(scenario(broker), 20)
        finally:
            await broker.driver.stop()
            broker.log.close()

    asyncio.run(main())


def test_group_apis_are_advertised_with_their_full_version_ranges() -> None:
    served = {a.key: (a.min_version, a.max_version) for a in served_apis()}
    assert {
        k: served[k]
        for k in (
            FIND,
            JOIN,
            SYNC,
            HEARTBEAT,
            LEAVE,
            COMMIT,
            FETCH,
            LIST,
            DESCRIBE,
            DELETE_GROUPS,
            OFFSET_DELETE,
        )
    } == {
        FIND: (0, 4),
        JOIN: (0, 7),
        SYNC: (0, 5),
        HEARTBEAT: (0, 4),
        LEAVE: (0, 4),
        COMMIT: (2, 8),
        FETCH: (1, 8),
        LIST: (0, 4),
        DESCRIBE: (0, 5),
        DELETE_GROUPS: (0, 2),
        OFFSET_DELETE: (0, 0),
    }


@pytest.mark.parametrize("step", range(8))
def test_whole_lifecycle_at_every_version(tmp_path: Path, step: int) -> None:
    join_v, sync_v, hb_v, leave_v = step, min(step, 5), min(step, 4), min(step, 4)
    commit_v, fetch_v, list_v, describe_v = min(2 + step, 8), min(1 + step, 8), min(step, 4), min(step, 5)
    delete_v = min(step, 2)

    async def scenario(b: Broker) -> None:
        group = f"g{step}"
        find = await b.call(FIND, min(step, 4), {"key": group, "key_type": 0, "coordinator_keys": [group]})
        if step >= 4:
            assert find["coordinators"] == [
                {
                    "key": group,
                    "node_id": 0,
                    "host": "127.0.0.1",
                    "port": 9999,
                    "error_code": 0,
                    "error_message": None,
                }
            ]
        else:
            assert (find["error_code"], find["node_id"], find["host"], find["port"]) == (
                0,
                0,
                "127.0.0.1",
                9999,
            )
        (joined,) = await b.joined_together(group, 1, join_v)
        assert joined["error_code"] == 0 and joined["leader"] == joined["member_id"]
        assert joined["protocol_name"] == "range" and joined["generation_id"] == 1
        assert joined["members"][0]["metadata"] == b"meta-range"
        member, generation = joined["member_id"], joined["generation_id"]
        synced = await b.sync(group, member, generation, {member: b"mine"}, sync_v)
        assert (synced["error_code"], synced["assignment"]) == (0, b"mine")
        assert await b.heartbeat(group, member, generation, hb_v) == 0
        commit = await b.call(
            COMMIT,
            commit_v,
            {
                "group_id": group,
                "generation_id_or_member_epoch": generation,
                "member_id": member,
                "group_instance_id": None,
                "retention_time_ms": -1,
                "topics": [
                    {
                        "name": "t",
                        "partitions": [
                            {
                                "partition_index": 1,
                                "committed_offset": 0,
                                "committed_leader_epoch": 0,
                                "committed_metadata": "md",
                            }
                        ],
                    }
                ],
            },
        )
        assert commit["topics"] == [{"name": "t", "partitions": [{"partition_index": 1, "error_code": 0}]}]
        request_topics = [{"name": "t", "partition_indexes": [0, 1]}]
        if fetch_v >= 8:
            fetched = await b.call(
                FETCH,
                fetch_v,
                {"groups": [{"group_id": group, "topics": request_topics}], "require_stable": True},
            )
            (only,) = fetched["groups"]
            assert only["group_id"] == group and only["error_code"] == 0
            partitions = only["topics"][0]["partitions"]
        else:
            fetched = await b.call(FETCH, fetch_v, {"group_id": group, "topics": request_topics})
            partitions = fetched["topics"][0]["partitions"]
        assert [
            (p["partition_index"], p["committed_offset"], p["metadata"], p["error_code"]) for p in partitions
        ] == [(0, -1, "", 0), (1, 0, "md", 0)]
        listed = await b.call(LIST, list_v, {"states_filter": ["Stable"] if list_v >= 4 else []})
        assert [(g["group_id"], g["protocol_type"]) for g in listed["groups"]] == [(group, "consumer")]
        if list_v >= 4:
            assert listed["groups"][0]["group_state"] == "Stable"
        described = await b.call(
            DESCRIBE, describe_v, {"groups": [group], "include_authorized_operations": False}
        )
        (d,) = described["groups"]
        assert (d["error_code"], d["group_state"], d["protocol_type"], d["protocol_data"]) == (
            0,
            "Stable",
            "consumer",
            "range",
        )
        assert [
            (m["member_id"], m["client_id"], m["member_metadata"], m["member_assignment"])
            for m in d["members"]
        ] == [(member, "test-client", b"meta-range", b"mine")]
        leave_body: Body = {
            "group_id": group,
            "member_id": member,
            "members": [{"member_id": member, "group_instance_id": None}],
        }
        left = await b.call(LEAVE, leave_v, leave_body)
        assert left["error_code"] == 0
        if leave_v >= 3:
            assert left["members"] == [{"member_id": member, "group_instance_id": None, "error_code": 0}]
        deleted = await b.call(
            OFFSET_DELETE,
            0,
            {"group_id": group, "topics": [{"name": "t", "partitions": [{"partition_index": 1}]}]},
        )
        assert deleted["error_code"] == 0 and deleted["topics"][0]["partitions"][0]["error_code"] == 0
        gone = await b.call(DELETE_GROUPS, delete_v, {"groups_names": [group]})
        assert gone["results"] == [{"group_id": group, "error_code": 0}]
        described = await b.call(
            DESCRIBE, describe_v, {"groups": [group], "include_authorized_operations": True}
        )
        assert described["groups"][0]["group_state"] == "Dead"

    run(tmp_path, scenario)


def test_offset_fetch_of_all_partitions_and_of_several_groups(tmp_path: Path) -> None:
    async def scenario(b: Broker) -> None:
        for group, offsets in (("a", {0: 5, 1: 6}), ("b", {1: 7})):
            resp = await b.call(
                COMMIT,
                8,
                {
                    "group_id": group,
                    "generation_id_or_member_epoch": -1,
                    "member_id": "",
                    "group_instance_id": None,
                    "topics": [
                        {
                            "name": "t",
                            "partitions": [
                                {
                                    "partition_index": p,
                                    "committed_offset": o,
                                    "committed_leader_epoch": 3,
                                    "committed_metadata": None,
                                }
                                for p, o in offsets.items()
                            ],
                        }
                    ],
                },
            )
            assert all(p["error_code"] == 0 for p in resp["topics"][0]["partitions"])
        every = await b.call(FETCH, 7, {"group_id": "a", "topics": None})
        assert [
            (p["partition_index"], p["committed_offset"], p["committed_leader_epoch"])
            for p in every["topics"][0]["partitions"]
        ] == [(0, 5, 3), (1, 6, 3)]
        both = await b.call(
            FETCH,
            8,
            {
                "groups": [
                    {"group_id": "a", "topics": None},
                    {"group_id": "b", "topics": None},
                    {"group_id": "none", "topics": None},
                ]
            },
        )
        summary = {
            g["group_id"]: [
                (p["partition_index"], p["committed_offset"]) for t in g["topics"] for p in t["partitions"]
            ]
            for g in both["groups"]
        }
        assert summary == {"a": [(0, 5), (1, 6)], "b": [(1, 7)], "none": []}

    run(tmp_path, scenario)


def test_error_paths(tmp_path: Path) -> None:
    async def scenario(b: Broker) -> None:
        # MEMBER_ID_REQUIRED (v4+), then UNKNOWN_MEMBER_ID for an id the broker never handed out.
        first = await b.join("g", version=4)
        assert first["error_code"] == ErrorCode.MEMBER_ID_REQUIRED and first["member_id"]
        assert first["generation_id"] == -1
        unknown = await b.join("g", "made-up", version=4)
        assert unknown["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        assert (await b.join("", version=3))["error_code"] == ErrorCode.INVALID_GROUP_ID
        bad_session = await b.call(
            JOIN,
            5,
            {
                "group_id": "g",
                "session_timeout_ms": 10,
                "rebalance_timeout_ms": 10,
                "member_id": "",
                "group_instance_id": "i",
                "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": b""}],
            },
        )
        assert bad_session["error_code"] == ErrorCode.INVALID_SESSION_TIMEOUT

        (leader,) = await b.stable("h")
        member, generation = leader["member_id"], leader["generation_id"]
        assert await b.heartbeat("h", "stranger", generation) == ErrorCode.UNKNOWN_MEMBER_ID
        assert await b.heartbeat("nowhere", member, generation) == ErrorCode.UNKNOWN_MEMBER_ID
        assert await b.heartbeat("h", member, generation + 1) == ErrorCode.ILLEGAL_GENERATION
        assert (await b.sync("h", member, generation - 1))["error_code"] == ErrorCode.ILLEGAL_GENERATION
        assert (await b.join("h", protocols=("other",)))[
            "error_code"
        ] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL

        # NON_EMPTY_GROUP and GROUP_ID_NOT_FOUND.
        deleted = await b.call(DELETE_GROUPS, 2, {"groups_names": ["h", "missing"]})
        assert [r["error_code"] for r in deleted["results"]] == [
            ErrorCode.NON_EMPTY_GROUP,
            ErrorCode.GROUP_ID_NOT_FOUND,
        ]
        missing = await b.call(OFFSET_DELETE, 0, {"group_id": "missing", "topics": []})
        assert missing["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND

        # FENCED_INSTANCE_ID: a static member restarted; its previous incarnation is fenced.
        old_task = asyncio.create_task(b.join("s", instance="inst"))
        await b.advance(DELAY)
        old = await old_task
        assert old["error_code"] == 0
        await b.sync("s", old["member_id"], old["generation_id"], {old["member_id"]: b"x"}, instance="inst")
        new = await b.join("s", instance="inst")
        assert new["error_code"] == 0 and new["member_id"] != old["member_id"]
        assert new["generation_id"] == old["generation_id"]  # no rebalance
        assert await b.heartbeat("s", old["member_id"], old["generation_id"], instance="inst") == (
            ErrorCode.FENCED_INSTANCE_ID
        )
        fenced_leave = await b.call(
            LEAVE,
            4,
            {"group_id": "s", "members": [{"member_id": old["member_id"], "group_instance_id": "inst"}]},
        )
        assert fenced_leave["members"][0]["error_code"] == ErrorCode.FENCED_INSTANCE_ID
        # An admin removes the static member by instance id alone (KIP-345).
        removed = await b.call(
            LEAVE, 4, {"group_id": "s", "members": [{"member_id": "", "group_instance_id": "inst"}]}
        )
        assert removed["members"][0]["error_code"] == 0

        # FindCoordinator: this broker coordinates transactions too; unknown key types are invalid.
        txn = await b.call(FIND, 4, {"key_type": 1, "coordinator_keys": ["tx"]})
        assert txn["coordinators"][0]["error_code"] == 0 and txn["coordinators"][0]["node_id"] >= 0
        odd = await b.call(FIND, 2, {"key": "x", "key_type": 7})
        assert odd["error_code"] == ErrorCode.INVALID_REQUEST

    run(tmp_path, scenario)


def test_heartbeat_during_a_rebalance_says_rebalance_in_progress(tmp_path: Path) -> None:
    async def scenario(b: Broker) -> None:
        leader, follower = await b.stable("g", 2)
        generation = leader["generation_id"]
        rejoin = asyncio.create_task(b.join("g", leader["member_id"]))  # waits for the follower
        await b.advance(0)
        assert not rejoin.done()
        assert await b.heartbeat("g", follower["member_id"], generation) == ErrorCode.REBALANCE_IN_PROGRESS
        follower_rejoin = await b.join("g", follower["member_id"])
        assert follower_rejoin["generation_id"] == generation + 1
        assert (await rejoin)["generation_id"] == generation + 1

    run(tmp_path, scenario)


def test_second_member_joining_while_the_first_waits_gets_in_not_unknown_member(tmp_path: Path) -> None:
    async def scenario(b: Broker) -> None:
        b.driver.coordinator.config = GroupConfig(initial_rebalance_delay_ms=3_000)
        for group in b.driver.coordinator.groups.values():
            group.config = b.driver.coordinator.config
        first = asyncio.create_task(b.join_new("g"))
        await b.advance(1_000)
        second = asyncio.create_task(b.join_new("g"))
        await b.advance(10)
        assert not first.done() and not second.done()
        for _ in range(10):  # the second arrival extends the initial delay by one more window
            await b.advance(1_000)
        one, two = await first, await second
        assert one["error_code"] == two["error_code"] == 0
        assert one["generation_id"] == two["generation_id"] == 1
        assert sorted(len(x["members"]) for x in (one, two)) == [0, 2]

    run(tmp_path, scenario)


def test_leader_leaving_mid_sync_and_missing_assignments(tmp_path: Path) -> None:
    async def scenario(b: Broker) -> None:
        joins = await b.joined_together("g", 3)
        leader = next(j for j in joins if j["leader"] == j["member_id"])
        followers = [j for j in joins if j is not leader]
        generation = leader["generation_id"]
        waiting = [asyncio.create_task(b.sync("g", f["member_id"], generation)) for f in followers]
        await b.advance(0)
        assert not any(w.done() for w in waiting)
        left = await b.call(LEAVE, 0, {"group_id": "g", "member_id": leader["member_id"]})
        assert left["error_code"] == 0
        released = [await w for w in waiting]
        assert [r["error_code"] for r in released] == [ErrorCode.REBALANCE_IN_PROGRESS] * 2
        assert all(r["assignment"] == b"" for r in released)
        # The survivors rejoin; the new leader assigns to itself only; the other still gets bytes.
        rejoined = await asyncio.gather(*(b.join("g", f["member_id"]) for f in followers))
        new_leader = next(j for j in rejoined if j["leader"] == j["member_id"])
        other = next(j for j in rejoined if j is not new_leader)
        syncs = await asyncio.gather(
            b.sync("g", other["member_id"], other["generation_id"], version=3),
            b.sync(
                "g",
                new_leader["member_id"],
                new_leader["generation_id"],
                {new_leader["member_id"]: b"everything"},
                version=3,
            ),
        )
        assert [(s["error_code"], s["assignment"]) for s in syncs] == [(0, b""), (0, b"everything")]

    run(tmp_path, scenario)


def test_silent_member_is_dropped_after_its_session_timeout(tmp_path: Path) -> None:
    async def scenario(b: Broker) -> None:
        alive, silent = await b.stable("g", 2)
        generation = alive["generation_id"]
        for _ in range(3):
            await b.advance(SESSION // 4)
            assert await b.heartbeat("g", alive["member_id"], generation) == 0
        await b.advance(SESSION // 4)
        assert await b.heartbeat("g", alive["member_id"], generation) == ErrorCode.REBALANCE_IN_PROGRESS
        assert await b.heartbeat("g", silent["member_id"], generation) == ErrorCode.UNKNOWN_MEMBER_ID
        again = await b.join("g", alive["member_id"])
        assert again["error_code"] == 0 and [m["member_id"] for m in again["members"]] == [alive["member_id"]]

    run(tmp_path, scenario)
