"""Compressed batches from confluent-kafka are stored verbatim and read back by confluent-kafka and
kafka-python (which decompresses gzip, snappy, lz4 and zstd itself)."""

from __future__ import annotations

import pytest

from conftest import RielServer
from e2e.helpers import (
    assert_partition_logs_well_formed,
    assert_per_key_order,
    assert_same_content,
    confluent_consume,
    confluent_produce,
    create_topic,
    kp_consume,
    make_messages,
    partition_dir,
    unique_topic,
)

N = 3_000
PARTITIONS = 3
VALUE_SIZE = 400  # highly compressible (dot padding): batches shrink many times


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip(riel: RielServer, codec: str) -> None:
    from confluent_kafka import OFFSET_BEGINNING

    topic = unique_topic(f"codec-{codec}")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    msgs = make_messages(N, value_size=VALUE_SIZE, tag=codec)
    acks = confluent_produce(
        riel.bootstrap,
        topic,
        msgs,
        conf={"compression.type": codec, "linger.ms": 50, "batch.num.messages": 1000},
    )
    ends = dict.fromkeys(range(PARTITIONS), 0)
    for p, off in acks:
        ends[p] = max(ends[p], off + 1)
    assert sum(ends.values()) == N

    by_confluent = confluent_consume(
        riel.bootstrap, topic, dict.fromkeys(range(PARTITIONS), OFFSET_BEGINNING), ends
    )
    by_kafka_python = kp_consume(riel.bootstrap, topic, dict.fromkeys(range(PARTITIONS)), ends)
    for consumed in (by_confluent, by_kafka_python):
        assert len(consumed) == N
        assert_same_content(msgs, consumed)
        assert_partition_logs_well_formed(consumed, range(PARTITIONS))
        assert_per_key_order(consumed)

    # The broker keeps the producer's compressed batches as they came (compression.type=producer):
    # the segments must be far smaller than the uncompressed values alone.
    raw_bytes = sum(len(m.value or b"") for m in msgs)
    on_disk = sum(
        f.stat().st_size
        for p in range(PARTITIONS)
        for f in partition_dir(riel.data_dir, topic, p).glob("*.log")
    )
    assert on_disk < raw_bytes / 3, f"{codec}: {on_disk} bytes on disk for {raw_bytes} raw value bytes"
