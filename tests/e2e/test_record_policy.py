"""Append-time record policies under real clients: a compacted topic refuses keyless records
(INVALID_RECORD), and message.timestamp.before/after.max.ms refuse CreateTime timestamps out of bounds
(INVALID_TIMESTAMP), with kafka-python and confluent-kafka producers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from conftest import RielServer
from e2e.helpers import (
    CLIENT_TIMEOUT_MS,
    confluent_topic_configs,
    confluent_watermarks,
    create_topic,
    kp_consume,
    kp_producer,
    unique_topic,
)

HOUR_MS = 3_600_000
TIMEOUT_S = 30.0


def kp_send(bootstrap: str, topic: str, key: bytes | None, timestamp_ms: int | None = None) -> Any:
    """Send one record with a fresh kafka-python producer (no retries); its RecordMetadata, or raise."""
    producer = kp_producer(bootstrap, retries=0, enable_idempotence=False, linger_ms=0)
    try:
        future = producer.send(topic, key=key, value=b"value", partition=0, timestamp_ms=timestamp_ms)
        producer.flush(timeout=TIMEOUT_S)
        return future.get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=10)


def confluent_send(bootstrap: str, topic: str, key: bytes | None, timestamp_ms: int = 0) -> tuple[Any, Any]:
    """Send one record with confluent-kafka (no retries); the (error, message) of its delivery report."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "retries": 0,
            "enable.idempotence": False,
            "message.timeout.ms": int(TIMEOUT_S * 1000),
            "socket.timeout.ms": CLIENT_TIMEOUT_MS,
        }
    )
    reports: list[tuple[Any, Any]] = []
    producer.produce(
        topic,
        key=key,
        value=b"value",
        partition=0,
        timestamp=timestamp_ms,
        on_delivery=lambda err, msg: reports.append((err, msg)),
    )
    remaining = producer.flush(TIMEOUT_S)
    assert remaining == 0 and len(reports) == 1, f"no delivery report within {TIMEOUT_S}s"
    return reports[0]


def test_kafka_python_keyless_record_on_a_compacted_topic_is_invalid_record(riel: RielServer) -> None:
    import kafka.errors as Errors

    topic = unique_topic("compact-kp")
    create_topic(riel.bootstrap, topic, 1, {"cleanup.policy": "compact"})
    with pytest.raises(Errors.KafkaError) as failure:
        kp_send(riel.bootstrap, topic, None)
    assert isinstance(failure.value, Errors.InvalidRecordError), repr(failure.value)
    assert failure.value.errno == 87
    # kafka-python shows the broker's error_message (librdkafka's delivery reports do not).
    assert "compacted topic cannot accept a record without a key" in str(failure.value)
    assert kp_send(riel.bootstrap, topic, b"key").offset == 0
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (0, 1)  # the refused record left no trace
    (record,) = kp_consume(riel.bootstrap, topic, {0: 0}, {0: 1})
    assert (record.key, record.value) == (b"key", b"value")


@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
def test_confluent_keyless_record_on_a_compacted_topic_gets_invalid_record(
    riel: RielServer, policy: str
) -> None:
    from confluent_kafka import KafkaError

    topic = unique_topic("compact-ck")
    create_topic(riel.bootstrap, topic, 1, {"cleanup.policy": policy})
    err, _ = confluent_send(riel.bootstrap, topic, None)
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    assert not err.retriable()
    err, msg = confluent_send(riel.bootstrap, topic, b"key")
    assert err is None and msg.offset() == 0
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (0, 1)


def test_keyless_records_are_fine_on_a_delete_topic(riel: RielServer) -> None:
    topic = unique_topic("delete")
    create_topic(riel.bootstrap, topic, 1, {"cleanup.policy": "delete"})
    assert kp_send(riel.bootstrap, topic, None).offset == 0
    err, msg = confluent_send(riel.bootstrap, topic, None)
    assert err is None and msg.offset() == 1


def test_a_two_hour_old_timestamp_is_refused_by_a_one_hour_bound(riel: RielServer) -> None:
    import kafka.errors as Errors
    from confluent_kafka import KafkaError

    topic = unique_topic("bounded")
    create_topic(riel.bootstrap, topic, 1, {"message.timestamp.before.max.ms": str(HOUR_MS)})
    two_hours_ago = int(time.time() * 1000) - 2 * HOUR_MS

    with pytest.raises(Errors.KafkaError) as failure:
        kp_send(riel.bootstrap, topic, b"k", timestamp_ms=two_hours_ago)
    assert isinstance(failure.value, Errors.InvalidTimestampError), repr(failure.value)
    assert failure.value.errno == 32
    assert f"timestamp {two_hours_ago} " in str(failure.value)
    assert "message.timestamp.before.max.ms=3600000" in str(failure.value)

    err, _ = confluent_send(riel.bootstrap, topic, b"k", timestamp_ms=two_hours_ago)
    assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, err

    # Inside the bound (and a timestamp in the future: that side is unbounded) both are accepted.
    assert kp_send(riel.bootstrap, topic, b"k", timestamp_ms=int(time.time() * 1000) - 60_000).offset == 0
    err, msg = confluent_send(riel.bootstrap, topic, b"k", timestamp_ms=int(time.time() * 1000) + 2 * HOUR_MS)
    assert err is None and msg.offset() == 1
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (0, 2)


def test_describe_configs_shows_the_bounds(riel: RielServer) -> None:
    topic = unique_topic("described")
    create_topic(riel.bootstrap, topic, 1, {"message.timestamp.after.max.ms": "60000"})
    configs = confluent_topic_configs(riel.bootstrap, topic)
    assert configs["message.timestamp.after.max.ms"] == ("60000", "DYNAMIC_TOPIC_CONFIG")
    assert configs["message.timestamp.before.max.ms"][0] == str(2**63 - 1)
