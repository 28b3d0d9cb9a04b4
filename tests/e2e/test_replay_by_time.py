"""Replay by time: offsets_for_times between two bursts finds the first record of the second burst, and
seeking there yields exactly that burst (kafka-python and confluent-kafka)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from conftest import RielServer
from e2e.helpers import (
    Rec,
    confluent_consume,
    confluent_consumer,
    create_topic,
    kp_consume,
    kp_consumer,
    kp_produce,
    unique_topic,
)

BURST = 200
GAP_MS = 10_000


@dataclass(frozen=True)
class Bursts:
    topic: str
    t0: int  # timestamp of burst A's first record; A is t0 + i, B is t0 + GAP_MS + i
    a: list[Rec]
    b: list[Rec]

    @property
    def between(self) -> int:
        return self.t0 + BURST + GAP_MS // 2

    @property
    def b_first_ts(self) -> int:
        return self.t0 + GAP_MS


@pytest.fixture(scope="module")
def bursts(riel: RielServer) -> Bursts:
    """Partition 0: burst A, a pause, burst B. Partition 1: burst A only (nothing at or after `between`)."""
    topic = unique_topic("replay")
    create_topic(riel.bootstrap, topic, 2)
    t0 = int(time.time() * 1000) - 60_000
    a = [Rec(b"a", f"A-{i}".encode(), (("burst", b"A"),)) for i in range(BURST)]
    b = [Rec(b"b", f"B-{i}".encode(), (("burst", b"B"),)) for i in range(BURST)]
    assert kp_produce(riel.bootstrap, topic, a, partition=0, timestamps=[t0 + i for i in range(BURST)]) == [
        (0, i) for i in range(BURST)
    ]
    kp_produce(riel.bootstrap, topic, a, partition=1, timestamps=[t0 + i for i in range(BURST)])
    time.sleep(1.0)  # B arrives in later batches, appended later
    assert kp_produce(
        riel.bootstrap, topic, b, partition=0, timestamps=[t0 + GAP_MS + i for i in range(BURST)]
    ) == [(0, BURST + i) for i in range(BURST)]
    return Bursts(topic, t0, a, b)


def test_kafka_python_offsets_for_times_and_seek(riel: RielServer, bursts: Bursts) -> None:
    from kafka import TopicPartition

    tp0, tp1 = TopicPartition(bursts.topic, 0), TopicPartition(bursts.topic, 1)
    consumer = kp_consumer(riel.bootstrap)
    try:
        found = consumer.offsets_for_times({tp0: bursts.between, tp1: bursts.between}, timeout_ms=20_000)
        assert found[tp0] is not None, "no offset for a timestamp between the bursts"
        assert found[tp0].offset == BURST, f"expected first offset of burst B ({BURST}), got {found[tp0]}"
        assert found[tp0].timestamp == bursts.b_first_ts
        assert found[tp1] is None, f"partition 1 has nothing at or after the timestamp, got {found[tp1]}"

        exact = consumer.offsets_for_times({tp0: bursts.b_first_ts}, timeout_ms=20_000)[tp0]
        assert exact is not None and exact.offset == BURST
        earliest = consumer.offsets_for_times({tp0: 0}, timeout_ms=20_000)[tp0]
        assert earliest is not None and (earliest.offset, earliest.timestamp) == (0, bursts.t0)
        future = consumer.offsets_for_times({tp0: bursts.b_first_ts + 10 * GAP_MS}, timeout_ms=20_000)[tp0]
        assert future is None
    finally:
        consumer.close()

    replay = kp_consume(riel.bootstrap, bursts.topic, {0: BURST}, {0: 2 * BURST})
    assert [r.content() for r in replay] == [m.content() for m in bursts.b]
    assert [r.offset for r in replay] == list(range(BURST, 2 * BURST))
    assert [r.timestamp for r in replay] == [bursts.b_first_ts + i for i in range(BURST)]


def test_offsets_for_times_inside_a_batch_is_record_exact(riel: RielServer, bursts: Bursts) -> None:
    """Uncompressed batches: Kafka answers with the first *record* whose timestamp >= the target."""
    from kafka import TopicPartition

    tp0 = TopicPartition(bursts.topic, 0)
    consumer = kp_consumer(riel.bootstrap)
    try:
        for i in (1, 57, BURST - 1):
            got = consumer.offsets_for_times({tp0: bursts.t0 + i}, timeout_ms=20_000)[tp0]
            assert got is not None and (got.offset, got.timestamp) == (i, bursts.t0 + i), f"ts t0+{i}: {got}"
    finally:
        consumer.close()


def test_confluent_offsets_for_times_and_seek(riel: RielServer, bursts: Bursts) -> None:
    from confluent_kafka import TopicPartition

    consumer = confluent_consumer(riel.bootstrap)
    try:
        found = consumer.offsets_for_times(
            [
                TopicPartition(bursts.topic, 0, bursts.between),
                TopicPartition(bursts.topic, 1, bursts.between),
            ],
            timeout=20,
        )
        by_p = {tp.partition: tp for tp in found}
        assert by_p[0].error is None and by_p[0].offset == BURST, f"partition 0: {by_p[0]}"
        assert by_p[1].error is None and by_p[1].offset == -1, f"partition 1 (no record that late): {by_p[1]}"
    finally:
        consumer.close()

    replay = confluent_consume(riel.bootstrap, bursts.topic, {0: BURST}, {0: 2 * BURST})
    assert [r.content() for r in replay] == [m.content() for m in bursts.b]
    assert [r.offset for r in replay] == list(range(BURST, 2 * BURST))
    assert [r.timestamp for r in replay] == [bursts.b_first_ts + i for i in range(BURST)]
