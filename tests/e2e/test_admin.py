"""Admin APIs through kafka-python's KafkaAdminClient and confluent-kafka's AdminClient."""

from __future__ import annotations

import uuid

import pytest

from conftest import RielServer
from e2e.helpers import (
    confluent_admin,
    confluent_describe_topics,
    confluent_incremental_alter,
    confluent_list_topics,
    confluent_topic_configs,
    kp_admin,
    unique_topic,
)

# ------------------------------------------------------------------------------------- kafka-python


def test_kafka_python_create_list_describe_delete(riel: RielServer) -> None:
    import kafka.errors as Errors

    t = unique_topic("kp-admin")
    with kp_admin(riel.bootstrap) as admin:
        result = admin.create_topics(
            {t: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "60000"}}},
            timeout_ms=20_000,
        )
        assert [(x["name"], x["error_code"]) for x in result["topics"]] == [(t, 0)]
        admin.wait_for_topics([t], timeout_ms=20_000)
        assert t in admin.list_topics()
        (desc,) = admin.describe_topics([t])
        assert desc["name"] == t and desc["error_code"] == 0
        assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1]
        assert all(p["leader_id"] == 0 for p in desc["partitions"])

        with pytest.raises(Errors.TopicAlreadyExistsError):
            admin.create_topics({t: {"num_partitions": 1, "replication_factor": 1}}, timeout_ms=20_000)
        with pytest.raises(Errors.InvalidTopicError):
            admin.create_topics(
                {"bad/name": {"num_partitions": 1, "replication_factor": 1}}, timeout_ms=20_000
            )
        with pytest.raises(Errors.InvalidPartitionsError):
            admin.create_topics(
                {unique_topic("zero"): {"num_partitions": 0, "replication_factor": 1}}, timeout_ms=20_000
            )

        # Metadata by topic id (KIP-516): kafka-python can describe by uuid.UUID.
        ids = {d["name"]: d.get("topic_id") for d in admin.describe_topics([t])}
        assert ids[t] is not None and uuid.UUID(str(ids[t])).int != 0, ids
        (by_id,) = admin.describe_topics([uuid.UUID(str(ids[t]))])
        assert by_id["name"] == t, by_id

        result = admin.delete_topics([t], timeout_ms=20_000)
        assert [(x["name"], x["error_code"]) for x in result["topics"]] == [(t, 0)]
        assert t not in admin.list_topics()
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            admin.delete_topics([t], timeout_ms=20_000)


def test_kafka_python_create_partitions(riel: RielServer) -> None:
    import kafka.errors as Errors

    t = unique_topic("kp-parts")
    with kp_admin(riel.bootstrap) as admin:
        admin.create_topics({t: {"num_partitions": 2, "replication_factor": 1}}, timeout_ms=20_000)
        admin.create_partitions({t: 5}, timeout_ms=20_000)
        (desc,) = admin.describe_topics([t])
        assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1, 2, 3, 4]
        with pytest.raises(Errors.InvalidPartitionsError):
            admin.create_partitions({t: 3}, timeout_ms=20_000)  # shrinking is not allowed
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            admin.create_partitions({unique_topic("missing"): 3}, timeout_ms=20_000)


def test_kafka_python_describe_and_alter_configs(riel: RielServer) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    t = unique_topic("kp-configs")
    with kp_admin(riel.bootstrap) as admin:
        admin.create_topics(
            {t: {"num_partitions": 1, "replication_factor": 1, "configs": {"cleanup.policy": "delete"}}},
            timeout_ms=20_000,
        )
        everything = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t)], config_filter="all"
        )
        configs = everything["topic"][t]
        assert configs["retention.ms"]["value"] == "604800000"
        assert configs["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
        assert configs["cleanup.policy"]["value"] == "delete"
        assert configs["cleanup.policy"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert configs["max.message.bytes"]["value"] == "1048588"

        # Incremental (the default on brokers advertising IncrementalAlterConfigs)
        res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, {"retention.ms": "120000"})])
        assert res == {"topic": {t: "OK"}}
        # Legacy AlterConfigs (replace the whole set; kafka-python re-sends the other modified keys)
        res = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, {"segment.bytes": "10485760"})], incremental=False
        )
        assert res == {"topic": {t: "OK"}}
        modified = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])["topic"][t]
        assert {k: v["value"] for k, v in modified.items()} == {
            "cleanup.policy": "delete",
            "retention.ms": "120000",
            "segment.bytes": "10485760",
        }
        # Only asked-for keys come back when keys are named.
        named = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, ["retention.ms"])], config_filter="all"
        )["topic"][t]
        assert list(named) == ["retention.ms"]

        admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, t, ["retention.ms"])])
        modified = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])["topic"][t]
        assert set(modified) == {"cleanup.policy", "segment.bytes"}


def test_kafka_python_alter_unknown_topic_and_bad_value(riel: RielServer) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    with kp_admin(riel.bootstrap) as admin:
        missing = unique_topic("missing")
        res = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, missing, {"retention.ms": "1"})],
            raise_on_unknown=False,
            incremental=True,
        )
        assert "UnknownTopicOrPartition" in res["topic"][missing], res
        t = unique_topic("kp-badcfg")
        admin.create_topics({t: {"num_partitions": 1, "replication_factor": 1}}, timeout_ms=20_000)
        res = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, {"retention.ms": "not-a-number"})], incremental=True
        )
        assert "InvalidConfiguration" in res["topic"][t] or "InvalidRequest" in res["topic"][t], res


# ---------------------------------------------------------------------------------------- confluent


def test_confluent_create_describe_delete_with_topic_ids(riel: RielServer) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin = confluent_admin(riel.bootstrap)
    t1, t2 = unique_topic("ck-admin"), unique_topic("ck-admin")
    futures = admin.create_topics(
        [NewTopic(t1, 3, 1, config={"retention.ms": "3600000"}), NewTopic(t2, 1, 1)], request_timeout=20
    )
    for f in futures.values():
        assert f.result(timeout=30) is None

    listed = confluent_list_topics(riel.bootstrap)
    assert listed[t1] == 3 and listed[t2] == 1

    described = confluent_describe_topics(riel.bootstrap, [t1, t2])
    ids = {name: str(d.topic_id) for name, d in described.items()}
    assert len(set(ids.values())) == 2, ids
    for name, d in described.items():
        assert d.name == name and not d.is_internal
        assert (
            d.topic_id is not None
            and d.topic_id.get_most_significant_bits() | d.topic_id.get_least_significant_bits()
        )
        assert all(p.leader is not None and p.leader.id == 0 for p in d.partitions)
    assert [p.id for p in described[t1].partitions] == [0, 1, 2]
    assert {
        name: str(d.topic_id) for name, d in confluent_describe_topics(riel.bootstrap, [t1, t2]).items()
    } == ids

    (dup,) = admin.create_topics([NewTopic(t1, 1, 1)], request_timeout=20).values()
    with pytest.raises(KafkaException) as exc:
        dup.result(timeout=30)
    assert exc.value.args[0].name() == "TOPIC_ALREADY_EXISTS"

    for f in admin.delete_topics([t1, t2], request_timeout=20).values():
        assert f.result(timeout=30) is None
    listed = confluent_list_topics(riel.bootstrap)
    assert t1 not in listed and t2 not in listed

    # A re-created topic gets a new id.
    (f,) = admin.create_topics([NewTopic(t1, 1, 1)], request_timeout=20).values()
    f.result(timeout=30)
    assert str(confluent_describe_topics(riel.bootstrap, [t1])[t1].topic_id) != ids[t1]


def test_confluent_describe_unknown_topic_fails(riel: RielServer) -> None:
    from confluent_kafka import KafkaException, TopicCollection

    admin = confluent_admin(riel.bootstrap)
    (f,) = admin.describe_topics(TopicCollection([unique_topic("nope")]), request_timeout=20).values()
    with pytest.raises(KafkaException) as exc:
        f.result(timeout=30)
    assert exc.value.args[0].name() == "UNKNOWN_TOPIC_OR_PART"


def test_confluent_create_partitions(riel: RielServer) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewPartitions, NewTopic

    admin = confluent_admin(riel.bootstrap)
    t = unique_topic("ck-parts")
    (f,) = admin.create_topics([NewTopic(t, 1, 1)], request_timeout=20).values()
    f.result(timeout=30)
    (f,) = admin.create_partitions([NewPartitions(t, 6)], request_timeout=20).values()
    assert f.result(timeout=30) is None
    assert confluent_list_topics(riel.bootstrap)[t] == 6
    (f,) = admin.create_partitions([NewPartitions(t, 2)], request_timeout=20).values()
    with pytest.raises(KafkaException) as exc:
        f.result(timeout=30)
    assert exc.value.args[0].name() == "INVALID_PARTITIONS"


def test_confluent_describe_and_incremental_alter_configs(riel: RielServer) -> None:
    from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

    admin = confluent_admin(riel.bootstrap)
    t = unique_topic("ck-configs")
    (f,) = admin.create_topics(
        [NewTopic(t, 1, 1, config={"cleanup.policy": "delete"})], request_timeout=20
    ).values()
    f.result(timeout=30)

    configs = confluent_topic_configs(riel.bootstrap, t)
    assert configs["cleanup.policy"] == ("delete", "DYNAMIC_TOPIC_CONFIG")
    assert configs["retention.ms"] == ("604800000", "DEFAULT_CONFIG")
    assert configs["message.timestamp.type"] == ("CreateTime", "DEFAULT_CONFIG")

    confluent_incremental_alter(
        riel.bootstrap, t, {"retention.ms": "86400000", "max.message.bytes": "500000"}
    )
    configs = confluent_topic_configs(riel.bootstrap, t)
    assert configs["retention.ms"] == ("86400000", "DYNAMIC_TOPIC_CONFIG")
    assert configs["max.message.bytes"] == ("500000", "DYNAMIC_TOPIC_CONFIG")
    assert configs["cleanup.policy"] == ("delete", "DYNAMIC_TOPIC_CONFIG")

    confluent_incremental_alter(riel.bootstrap, t, {"retention.ms": None})
    configs = confluent_topic_configs(riel.bootstrap, t)
    assert configs["retention.ms"] == ("604800000", "DEFAULT_CONFIG")
    assert configs["max.message.bytes"] == ("500000", "DYNAMIC_TOPIC_CONFIG")

    # Legacy AlterConfigs replaces the whole set: keys not named fall back to their defaults.
    (f,) = admin.alter_configs(
        [ConfigResource(ResourceType.TOPIC, t, set_config={"retention.bytes": "123456789"})],
        request_timeout=20,
    ).values()
    f.result(timeout=30)
    configs = confluent_topic_configs(riel.bootstrap, t)
    assert configs["retention.bytes"] == ("123456789", "DYNAMIC_TOPIC_CONFIG")
    assert configs["max.message.bytes"] == ("1048588", "DEFAULT_CONFIG")
    assert configs["cleanup.policy"] == ("delete", "DEFAULT_CONFIG")


def test_confluent_max_message_bytes_is_enforced(riel: RielServer) -> None:
    """A topic's max.message.bytes (set by IncrementalAlterConfigs) rejects bigger batches."""
    from confluent_kafka import KafkaError, Producer

    t = unique_topic("ck-maxbytes")
    from confluent_kafka.admin import NewTopic

    admin = confluent_admin(riel.bootstrap)
    (f,) = admin.create_topics([NewTopic(t, 1, 1)], request_timeout=20).values()
    f.result(timeout=30)
    confluent_incremental_alter(riel.bootstrap, t, {"max.message.bytes": "10000"})
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": riel.bootstrap, "message.timeout.ms": 20_000})
    producer.produce(t, value=b"x" * 50_000, on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors
