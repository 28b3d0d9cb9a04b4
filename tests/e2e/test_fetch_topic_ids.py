"""Fetch v13+ (topics named by topic ID, KIP-516) with a real client: librdkafka (confluent-kafka) picks
the newest Fetch both sides speak, so it reads by topic ID here; after its topic is deleted and created
again it is told UNKNOWN_TOPIC_ID, refreshes its metadata and reads the new topic, never old data."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from typing import Any

from conftest import RielServer
from e2e.helpers import (
    assert_same_content,
    confluent_admin,
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    create_topic,
    make_messages,
    unique_topic,
)

FETCH_VERSION = re.compile(r"Sent FetchRequest \(v(\d+)")


def debug_logger() -> tuple[logging.Logger, io.StringIO]:
    """A logger capturing librdkafka's debug lines (which name each request and its version)."""
    text = io.StringIO()
    logger = logging.getLogger(f"rdkafka-{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(text))
    return logger, text


def test_confluent_reads_by_topic_id(riel: RielServer) -> None:
    from confluent_kafka import OFFSET_BEGINNING

    topic = unique_topic("fetch-id")
    create_topic(riel.bootstrap, topic, 3)
    produced = make_messages(3_000)
    acks = confluent_produce(riel.bootstrap, topic, produced)
    ends = {p: 1 + max((off for part, off in acks if part == p), default=-1) for p in range(3)}
    assert sum(ends.values()) == len(produced)
    logger, text = debug_logger()
    consumed = confluent_consume(
        riel.bootstrap,
        topic,
        {p: OFFSET_BEGINNING for p in range(3)},
        ends,
        debug="protocol",
        logger=logger,
    )
    assert_same_content(produced, consumed)
    versions = {int(v) for v in FETCH_VERSION.findall(text.getvalue())}
    assert versions and min(versions) >= 13, versions


def _delete_and_recreate(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import NewTopic

    admin = confluent_admin(bootstrap)
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while True:  # deletion is synchronous in Riel, but ask until the name is free rather than assume
        futures = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30)
        try:
            futures[topic].result(timeout=30)
            return
        except Exception:
            assert time.monotonic() < deadline, f"{topic} could not be created again"
            time.sleep(0.2)


def _poll_values(consumer: Any, want: int, seconds: float) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + seconds
    while len(values) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            values.append(msg.value())
    return values


def test_recreated_topic_answers_unknown_topic_id_to_the_old_id(riel: RielServer) -> None:
    from confluent_kafka import Producer, TopicPartition

    topic = unique_topic("fetch-recreate")
    create_topic(riel.bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": riel.bootstrap})
    for i in range(10):
        producer.produce(topic, f"old{i}".encode(), partition=0)
    assert producer.flush(30) == 0

    logger, text = debug_logger()
    consumer = confluent_consumer(
        riel.bootstrap,
        debug="fetch",
        logger=logger,
        **{"topic.metadata.refresh.interval.ms": 1000, "enable.partition.eof": False},
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 5)])
        assert _poll_values(consumer, 5, 30) == [f"old{i}".encode() for i in range(5, 10)]

        _delete_and_recreate(riel.bootstrap, topic)
        for i in range(20):
            producer.produce(topic, f"new{i}".encode(), partition=0)
        assert producer.flush(30) == 0

        after = _poll_values(consumer, 10, 60)
        # The consumer kept its position (offset 10) and now reads the new topic from there: what the
        # new topic holds at those offsets, nothing of the old topic.
        assert after == [f"new{i}".encode() for i in range(10, 20)]
        consumer.poll(0.5)  # librdkafka hands its log lines over on poll
        assert "UNKNOWN_TOPIC_ID" in text.getvalue()
    finally:
        consumer.close()
