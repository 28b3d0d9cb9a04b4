"""A 20 MB partition of 1 KiB messages: a default kafka-python consumer reads all 20,480 in order, and
raw Fetch requests show the broker respects partition_max_bytes / max_bytes (and KIP-74's first batch)."""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from conftest import RielServer
from e2e.helpers import Rec, confluent_produce, create_topic, fetch_v4, iter_batch_headers, unique_topic

COUNT = 20_480
VALUE_SIZE = 1024
BATCH_MESSAGES = 16  # ~17 KB batches, so fetch limits cut between batches


@pytest.fixture(scope="module")
def big_topic(riel: RielServer) -> str:
    topic = unique_topic("big")
    create_topic(riel.bootstrap, topic, 1)
    msgs = [Rec(f"k{i % 100}".encode(), i.to_bytes(8, "big") * (VALUE_SIZE // 8)) for i in range(COUNT)]
    acks = confluent_produce(
        riel.bootstrap,
        topic,
        msgs,
        conf={"linger.ms": 20, "batch.num.messages": BATCH_MESSAGES, "acks": "all"},
        timeout=120,
    )
    assert acks == [(0, i) for i in range(COUNT)]
    return topic


@pytest.mark.slow
def test_default_kafka_python_consumer_reads_20mb_partition_in_order(
    riel: RielServer, big_topic: str
) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=riel.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    try:
        tp = TopicPartition(big_topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        expected = 0
        deadline = time.monotonic() + 120
        while expected < COUNT:
            assert time.monotonic() < deadline, f"read only {expected} of {COUNT} in 120 s"
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    assert r.offset == expected, f"expected offset {expected}, got {r.offset}"
                    assert r.value == expected.to_bytes(8, "big") * (VALUE_SIZE // 8), (
                        f"bad value at {expected}"
                    )
                    assert r.key == f"k{expected % 100}".encode()
                    expected += 1
        assert consumer.end_offsets([tp], timeout_ms=20_000)[tp] == COUNT
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("partition_max_bytes", "max_bytes"),
    [
        (64 * 1024, 50 * 1024 * 1024),
        (1024 * 1024, 1024 * 1024),
        (50 * 1024 * 1024, 200 * 1024),
        (10 * 1024 * 1024, 50 * 1024 * 1024),  # responses far beyond socket buffers: sendfile backpressure
    ],
)
def test_fetch_respects_size_limits(
    riel: RielServer, big_topic: str, partition_max_bytes: int, max_bytes: int
) -> None:
    limit = min(partition_max_bytes, max_bytes)
    with socket.create_connection((riel.host, riel.port), timeout=20) as sock:
        for offset in (0, 5_000, 12_345, COUNT - 1):
            err, hw, records = fetch_v4(
                sock, big_topic, 0, offset, partition_max_bytes=partition_max_bytes, max_bytes=max_bytes
            )
            assert err == 0, f"fetch at {offset}: error {err}"
            assert hw == COUNT
            batches = list(iter_batch_headers(records))
            assert batches, f"fetch at {offset}: no complete batch in {len(records)} bytes"
            base, count, _ = batches[0]
            assert base <= offset < base + count, f"first batch {base}+{count} does not contain {offset}"
            assert len(records) <= limit, f"fetch at {offset}: {len(records)} bytes > limit {limit}"
            for (b1, c1, _), (b2, _, _) in itertools.pairwise(batches):
                assert b2 == b1 + c1, f"batches not contiguous: {b1}+{c1} then {b2}"


def test_fetch_returns_first_batch_even_if_bigger_than_limit(riel: RielServer, big_topic: str) -> None:
    """KIP-74: a consumer must always make progress, so a too-small limit still yields one whole batch."""
    with socket.create_connection((riel.host, riel.port), timeout=20) as sock:
        err, _, records = fetch_v4(sock, big_topic, 0, 100, partition_max_bytes=100, max_bytes=100)
        assert err == 0
        batches = list(iter_batch_headers(records))
        assert len(batches) == 1, (
            f"expected exactly one whole batch, got {len(batches)} in {len(records)} bytes"
        )
        base, count, size = batches[0]
        assert base <= 100 < base + count
        assert size == len(records)


def test_fetch_at_log_end_is_empty_and_beyond_is_out_of_range(riel: RielServer, big_topic: str) -> None:
    with socket.create_connection((riel.host, riel.port), timeout=20) as sock:
        err, hw, records = fetch_v4(sock, big_topic, 0, COUNT, partition_max_bytes=1 << 20, max_bytes=1 << 20)
        assert (err, hw, records) == (0, COUNT, b"")
        err, _, records = fetch_v4(
            sock, big_topic, 0, COUNT + 10, partition_max_bytes=1 << 20, max_bytes=1 << 20
        )
        assert err == 1, f"fetch beyond the log end: expected OFFSET_OUT_OF_RANGE (1), got {err}"
        assert records == b""
