"""Group administration with kafka-python's and confluent-kafka's admin clients: list and describe groups
(state, members, assignments), list committed offsets, reset offsets (OffsetCommit from an admin),
delete some offsets (OffsetDelete), and delete a group (refused while it has members)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import RielServer
from e2e.group_helpers import Worker, partitions_covered_once, stop_all, wait_until
from e2e.helpers import (
    confluent_admin,
    confluent_produce,
    create_topic,
    kp_admin,
    make_messages,
    unique_topic,
)

PARTITIONS = 4
MESSAGES = 400


def _confluent_result(futures: dict[Any, Any]) -> dict[Any, Any]:
    return {key: f.result(timeout=30) for key, f in futures.items()}


def test_group_admin(riel: RielServer, tmp_path: Path) -> None:
    from confluent_kafka import (
        ConsumerGroupState,
        ConsumerGroupTopicPartitions,
        KafkaException,
        TopicPartition,
    )
    from kafka import TopicPartition as KpTopicPartition
    from kafka.structs import OffsetAndMetadata

    topic = unique_topic("admin")
    group = unique_topic("admin-group")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    confluent_produce(riel.bootstrap, topic, make_messages(MESSAGES, tag="admin"))
    workers = [
        Worker("confluent", riel.bootstrap, group, topic, tmp_path / f"m{i}.jsonl", name=f"m{i}")
        for i in range(2)
    ]
    cadmin = confluent_admin(riel.bootstrap)
    try:
        wait_until(
            lambda: (
                partitions_covered_once(workers, PARTITIONS)
                and sum(len(w.records()) for w in workers) >= MESSAGES
            ),
            45,
            lambda: f"both members to share and consume everything: {workers}",
            workers,
        )

        # --- an active group, seen by kafka-python's admin client
        with kp_admin(riel.bootstrap) as admin:
            listed = {g["group_id"]: g for g in admin.list_groups()}
            assert listed[group]["protocol_type"] == "consumer"
            assert listed[group]["group_state"] == "Stable"
            assert group in {g["group_id"] for g in admin.list_groups(states_filter=["Stable"])}
            assert group not in {g["group_id"] for g in admin.list_groups(states_filter=["Empty"])}
            described = admin.describe_groups([group])[group]
            assert described["error"] is None
            assert (described["group_state"], described["protocol_type"], described["protocol_data"]) == (
                "Stable",
                "consumer",
                "range",
            )
            assert len(described["members"]) == 2
            assert {m["client_id"] for m in described["members"]} == {"riel-m0", "riel-m1"}
            assigned = sorted(
                p
                for m in described["members"]
                for t in m["member_assignment"]["assigned_partitions"]
                for p in t["partitions"]
            )
            assert assigned == list(range(PARTITIONS))
            offsets = admin.list_group_offsets(group)[group]
            assert sum(o.offset for o in offsets.values()) == MESSAGES
            assert admin.delete_groups([group]) == {group: "NonEmptyGroupError"}

        # --- the same, seen by confluent-kafka's admin client
        listing = cadmin.list_consumer_groups(request_timeout=20).result(timeout=30)
        mine = [g for g in listing.valid if g.group_id == group]
        assert (
            len(mine) == 1
            and mine[0].state == ConsumerGroupState.STABLE
            and not mine[0].is_simple_consumer_group
        )
        (description,) = _confluent_result(
            cadmin.describe_consumer_groups([group], request_timeout=20)
        ).values()
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == "range"
        assert sorted(
            tp.partition for m in description.members for tp in m.assignment.topic_partitions
        ) == list(range(PARTITIONS))
        (committed,) = _confluent_result(
            cadmin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=20)
        ).values()
        assert sum(tp.offset for tp in committed.topic_partitions) == MESSAGES
        with pytest.raises(KafkaException, match="NON_EMPTY_GROUP"):
            _confluent_result(cadmin.delete_consumer_groups([group], request_timeout=20))

        # --- the members leave; offsets of the now empty group can be reset
        for w in workers:
            w.terminate()
        (description,) = _confluent_result(
            cadmin.describe_consumer_groups([group], request_timeout=20)
        ).values()
        assert description.state == ConsumerGroupState.EMPTY and description.members == []
        reset = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, 10) for p in range(PARTITIONS)])
        _confluent_result(cadmin.alter_consumer_group_offsets([reset], request_timeout=20))
        with kp_admin(riel.bootstrap) as admin:
            result = admin.alter_group_offsets(
                group, {KpTopicPartition(topic, 0): OffsetAndMetadata(5, "by kp", -1)}
            )
            assert all(e.__name__ == "NoError" for e in result.values()), result
            offsets = admin.list_group_offsets(group)[group]
        assert {tp.partition: (o.offset, o.metadata) for tp, o in offsets.items()} == {
            0: (5, "by kp"),
            **{p: (10, "") for p in range(1, PARTITIONS)},
        }

        # A consumer of the group starts where the admin put it.
        resumed = Worker(
            "kafka-python", riel.bootstrap, group, topic, tmp_path / "resumed.jsonl", name="resumed"
        )
        workers.append(resumed)
        expected = MESSAGES - 5 - 10 * (PARTITIONS - 1)
        wait_until(
            lambda: len(resumed.records()) >= expected,
            45,
            lambda: f"the resumed member to read {expected}, got {len(resumed.records())}",
            workers,
        )
        firsts: dict[int, int] = {}
        for p, o, _ in resumed.records():
            firsts.setdefault(p, o)
        assert firsts == {0: 5, **{p: 10 for p in range(1, PARTITIONS)}}
        resumed.terminate()

        # OffsetDelete for one partition, then delete the whole (empty) group.
        with kp_admin(riel.bootstrap) as admin:
            deleted = admin.delete_group_offsets(group, [KpTopicPartition(topic, 3)])
            assert [e.__name__ for e in deleted.values()] == ["NoError"]
            assert KpTopicPartition(topic, 3) not in admin.list_group_offsets(group)[group]
            assert admin.delete_groups([group]) == {group: "OK"}
            assert admin.list_group_offsets(group)[group] == {}
        listing = cadmin.list_consumer_groups(request_timeout=20).result(timeout=30)
        assert group not in {g.group_id for g in listing.valid}
        with pytest.raises(KafkaException, match="GROUP_ID_NOT_FOUND"):
            _confluent_result(cadmin.delete_consumer_groups([group], request_timeout=20))
    finally:
        stop_all(workers)
