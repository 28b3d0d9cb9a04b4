"""High/low watermarks after produce, and DeleteRecords moving the log start (both admin clients)."""

from __future__ import annotations

import pytest

from conftest import RielServer
from e2e.helpers import (
    confluent_admin,
    confluent_consume,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    kp_admin,
    kp_consume,
    kp_consumer,
    make_messages,
    unique_topic,
)

N = 1_000


def test_watermarks_after_produce(riel: RielServer) -> None:
    topic = unique_topic("wm")
    create_topic(riel.bootstrap, topic, 1)
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (0, 0)
    confluent_produce(riel.bootstrap, topic, make_messages(N), partition=0)
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (0, N)


def _list_offsets_kp(bootstrap: str, topic: str) -> tuple[int, int]:
    from kafka import TopicPartition

    tp = TopicPartition(topic, 0)
    consumer = kp_consumer(bootstrap)
    try:
        return (
            consumer.beginning_offsets([tp], timeout_ms=20_000)[tp],
            consumer.end_offsets([tp], timeout_ms=20_000)[tp],
        )
    finally:
        consumer.close()


def _list_offsets_confluent_admin(bootstrap: str, topic: str) -> tuple[int, int]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    admin = confluent_admin(bootstrap)
    tp = TopicPartition(topic, 0)
    earliest = admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=20)
    latest = admin.list_offsets({tp: OffsetSpec.latest()}, request_timeout=20)
    return (
        next(iter(earliest.values())).result(timeout=30).offset,
        next(iter(latest.values())).result(timeout=30).offset,
    )


@pytest.mark.parametrize("admin_client", ["kafka-python", "confluent"])
def test_delete_records_moves_log_start(riel: RielServer, admin_client: str) -> None:
    topic = unique_topic(f"delrec-{admin_client}")
    create_topic(riel.bootstrap, topic, 1)
    msgs = make_messages(N)
    confluent_produce(riel.bootstrap, topic, msgs, partition=0, conf={"batch.num.messages": 100})
    cut = 437  # inside a batch: the log start is record-exact even though segments are not

    if admin_client == "kafka-python":
        from kafka import TopicPartition

        with kp_admin(riel.bootstrap) as admin:
            result = admin.delete_records({TopicPartition(topic, 0): cut}, timeout_ms=20_000)
        (info,) = result.values()
        assert info["low_watermark"] == cut, result
    else:
        from confluent_kafka import TopicPartition

        admin = confluent_admin(riel.bootstrap)
        futures = admin.delete_records(
            [TopicPartition(topic, 0, cut)], request_timeout=20, operation_timeout=20
        )
        (future,) = futures.values()
        assert future.result(timeout=30).low_watermark == cut

    assert confluent_watermarks(riel.bootstrap, topic, 0) == (cut, N)
    assert _list_offsets_kp(riel.bootstrap, topic) == (cut, N)
    assert _list_offsets_confluent_admin(riel.bootstrap, topic) == (cut, N)

    # Reading from the beginning now starts at the cut; both consumers agree.
    from confluent_kafka import OFFSET_BEGINNING

    for consumed in (
        kp_consume(riel.bootstrap, topic, {0: None}, {0: N}),
        confluent_consume(riel.bootstrap, topic, {0: OFFSET_BEGINNING}, {0: N}),
    ):
        assert [r.offset for r in consumed] == list(range(cut, N))
        assert [r.content() for r in consumed] == [m.content() for m in msgs[cut:]]

    # A fetch below the log start is out of range; kafka-python resets to earliest (= the cut).
    below = kp_consume(riel.bootstrap, topic, {0: 10}, {0: N})
    assert below[0].offset == cut, f"after seeking below the log start, first record is at {below[0].offset}"


def test_delete_all_records_then_produce_continues_offsets(riel: RielServer) -> None:
    from confluent_kafka import OFFSET_END, TopicPartition

    topic = unique_topic("delrec-all")
    create_topic(riel.bootstrap, topic, 1)
    confluent_produce(riel.bootstrap, topic, make_messages(100), partition=0)
    admin = confluent_admin(riel.bootstrap)
    (future,) = admin.delete_records([TopicPartition(topic, 0, OFFSET_END)], request_timeout=20).values()
    assert future.result(timeout=30).low_watermark == 100
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (100, 100)
    acks = confluent_produce(riel.bootstrap, topic, make_messages(10, tag="after"), partition=0)
    assert acks == [(0, 100 + i) for i in range(10)]
    assert confluent_watermarks(riel.bootstrap, topic, 0) == (100, 110)
