"""Retention deletes old segments under real clients; append-only topics refuse every way of removing
records, through kafka-python's and confluent-kafka's admin clients."""

from __future__ import annotations

import time

import pytest

from conftest import RielServer, ServerFactory
from e2e.helpers import (
    confluent_admin,
    confluent_incremental_alter,
    confluent_watermarks,
    create_topic,
    kp_admin,
    kp_consume,
    kp_produce,
    make_messages,
    unique_topic,
)


def test_retention_deletes_old_segments_and_a_consumer_below_the_start_resets(
    riel_factory: ServerFactory,
) -> None:
    server = riel_factory(extra_args=("--retention-check-interval-ms", "200"))
    topic = unique_topic("retention")
    # Small segments, so the old records sit in segments of their own; an hour of retention.
    create_topic(server.bootstrap, topic, 1, {"retention.ms": "3600000", "segment.bytes": "2000"})
    now = int(time.time() * 1000)
    old, new = make_messages(60, tag="old"), make_messages(40, tag="new")
    kp_produce(server.bootstrap, topic, old, partition=0, timestamps=[now - 7_200_000] * len(old))
    kp_produce(server.bootstrap, topic, new, partition=0, timestamps=[now] * len(new))

    deadline = time.monotonic() + 20
    while confluent_watermarks(server.bootstrap, topic, 0)[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    start, end = confluent_watermarks(server.bootstrap, topic, 0)
    assert end == 100
    assert 0 < start <= 60, f"retention should delete (only) two-hour-old segments; log start is {start}"

    # kafka-python seeks to offset 0, below the log start: OFFSET_OUT_OF_RANGE, reset to earliest.
    consumed = kp_consume(server.bootstrap, topic, {0: 0}, {0: 100}, auto_offset_reset="earliest")
    assert consumed[0].offset == start
    assert [r.offset for r in consumed] == list(range(start, 100))
    assert [r.value for r in consumed[-40:]] == [m.value for m in new]


def refused_by_kafka_python(bootstrap: str, topic: str) -> list[str]:
    import kafka.errors as Errors
    from kafka import TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType

    failures = []
    with kp_admin(bootstrap) as admin:
        with pytest.raises(Errors.KafkaError) as deleting_records:
            admin.delete_records({TopicPartition(topic, 0): 5}, timeout_ms=20_000)
        failures.append(str(deleting_records.value))
        with pytest.raises(Errors.TopicDeletionDisabledError) as deleting_topic:
            admin.delete_topics([topic], timeout_ms=20_000)
        failures.append(str(deleting_topic.value))
        result = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"riel.append.only": "false"})]
        )
        # kafka-python reports per resource: {"topic": {name: "[Error 44] PolicyViolationError: ..."}}
        (outcome,) = result["topic"].values()
        assert "[Error 44] PolicyViolationError" in outcome and "cannot be turned off" in outcome
        failures.append(outcome)
    return failures


def refused_by_confluent(bootstrap: str, topic: str) -> list[str]:
    from confluent_kafka import KafkaException, TopicPartition

    admin = confluent_admin(bootstrap)
    failures = []
    (records,) = admin.delete_records([TopicPartition(topic, 0, 5)], request_timeout=20).values()
    with pytest.raises(KafkaException) as deleting_records:
        records.result(timeout=30)
    failures.append(str(deleting_records.value))
    (deletion,) = admin.delete_topics([topic], request_timeout=20).values()
    with pytest.raises(KafkaException) as deleting_topic:
        deletion.result(timeout=30)
    failures.append(str(deleting_topic.value))
    with pytest.raises(KafkaException) as weakening:
        confluent_incremental_alter(bootstrap, topic, {"cleanup.policy": "compact"})
    failures.append(str(weakening.value))
    return failures


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_append_only_topic_refuses_deletion_through_admin_clients(riel: RielServer, client: str) -> None:
    topic = unique_topic(f"audit-{client}")
    create_topic(riel.bootstrap, topic, 1, {"riel.append.only": "true", "retention.ms": "1"})
    kp_produce(riel.bootstrap, topic, make_messages(20), partition=0)

    refuse = refused_by_kafka_python if client == "kafka-python" else refused_by_confluent
    failures = refuse(riel.bootstrap, topic)
    text = "\n".join(failures).lower()
    assert "append-only" in text or "policy" in text, failures

    time.sleep(0.5)
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (0, 20)  # everything still there
    with kp_admin(riel.bootstrap) as admin:
        assert topic in admin.list_topics()
    assert "refused to delete append-only topic" in riel.log_text()
