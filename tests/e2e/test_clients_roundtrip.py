"""Each real client produces 10,000 keyed messages with headers to a 3-partition topic and reads them
back itself: exact contents, per-key order, headers intact, offsets contiguous, consumer CRC checks on."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import Any

import pytest

from conftest import RielServer
from e2e.helpers import (
    CLIENT_TIMEOUT_MS,
    Rec,
    assert_partition_logs_well_formed,
    assert_per_key_order,
    assert_same_content,
    confluent_consume,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    kp_consume,
    kp_produce,
    make_messages,
    unique_topic,
)

N = 10_000
PARTITIONS = 3


def check_roundtrip(produced: list[Rec], consumed: list[Rec]) -> None:
    assert len(consumed) == len(produced), f"consumed {len(consumed)} of {len(produced)}"
    assert_same_content(produced, consumed)
    assert_partition_logs_well_formed(consumed, range(PARTITIONS))
    assert_per_key_order(consumed)


def ends_of(consumed_or_acks: list[tuple[int, int]]) -> dict[int, int]:
    ends = dict.fromkeys(range(PARTITIONS), 0)
    for p, off in consumed_or_acks:
        ends[p] = max(ends[p], off + 1)
    return ends


def test_kafka_python_default_idempotent_producer(riel: RielServer) -> None:
    topic = unique_topic("kp-roundtrip")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    msgs = make_messages(N)
    acks = kp_produce(riel.bootstrap, topic, msgs)  # default config: enable_idempotence=True, acks=all
    ends = ends_of(acks)
    assert sum(ends.values()) == N, f"acked offsets do not add up to {N} records: ends {ends}"
    consumed = kp_consume(riel.bootstrap, topic, dict.fromkeys(range(PARTITIONS)), ends)
    check_roundtrip(msgs, consumed)
    by_seq = {int(r.headers[0][1] or b"-1"): (r.partition, r.offset) for r in consumed}
    assert [by_seq[i] for i in range(N)] == acks, "records are not at the offsets the producer was acked"


def test_confluent_kafka(riel: RielServer) -> None:
    topic = unique_topic("ck-roundtrip")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    msgs = make_messages(N)
    acks = confluent_produce(riel.bootstrap, topic, msgs, conf={"acks": "all"})
    ends = ends_of(acks)
    assert sum(ends.values()) == N
    for p in range(PARTITIONS):
        assert confluent_watermarks(riel.bootstrap, topic, p) == (0, ends[p])
    from confluent_kafka import OFFSET_BEGINNING

    consumed = confluent_consume(
        riel.bootstrap, topic, dict.fromkeys(range(PARTITIONS), OFFSET_BEGINNING), ends
    )
    check_roundtrip(msgs, consumed)
    by_seq = {int(r.headers[0][1] or b"-1"): (r.partition, r.offset) for r in consumed}
    assert [by_seq[i] for i in range(N)] == acks


def test_confluent_kafka_idempotent(riel: RielServer) -> None:
    topic = unique_topic("ck-idem")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    msgs = make_messages(N)
    acks = confluent_produce(riel.bootstrap, topic, msgs, conf={"enable.idempotence": True, "linger.ms": 20})
    ends = ends_of(acks)
    from confluent_kafka import OFFSET_BEGINNING

    consumed = confluent_consume(
        riel.bootstrap, topic, dict.fromkeys(range(PARTITIONS), OFFSET_BEGINNING), ends
    )
    check_roundtrip(msgs, consumed)


async def _aiokafka_roundtrip(
    bootstrap: str, topic: str, msgs: list[Rec], producer_conf: dict[str, Any]
) -> list[Rec]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=CLIENT_TIMEOUT_MS, **producer_conf
    )
    await asyncio.wait_for(producer.start(), 30)
    try:
        futures = [
            await producer.send(topic, key=m.key, value=m.value, headers=list(m.headers)) for m in msgs
        ]
        metas = await asyncio.wait_for(asyncio.gather(*futures), 60)
    finally:
        await asyncio.wait_for(producer.stop(), 30)
    ends = dict.fromkeys(range(PARTITIONS), 0)
    for md in metas:
        ends[md.partition] = max(ends[md.partition], md.offset + 1)
    assert sum(ends.values()) == len(msgs), f"acked offsets {ends} do not add up to {len(msgs)}"

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        check_crcs=True,
        request_timeout_ms=CLIENT_TIMEOUT_MS,
    )
    await asyncio.wait_for(consumer.start(), 30)
    out: list[Rec] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        pending = {p for p in range(PARTITIONS) if ends[p] > 0}
        deadline = time.monotonic() + 60
        while pending:
            assert time.monotonic() < deadline, f"aiokafka consume timed out, pending {pending}"
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    out.append(Rec(r.key, r.value, tuple(r.headers), tp.partition, r.offset, r.timestamp))
                    if r.offset + 1 >= ends[tp.partition]:
                        pending.discard(tp.partition)
    finally:
        await asyncio.wait_for(consumer.stop(), 30)
    return out


@pytest.mark.parametrize(
    "producer_conf",
    [pytest.param({}, id="default"), pytest.param({"enable_idempotence": True}, id="idempotent")],
)
def test_aiokafka(riel: RielServer, producer_conf: dict[str, Any]) -> None:
    topic = unique_topic("aio-roundtrip")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    msgs = make_messages(N)
    consumed = asyncio.run(_aiokafka_roundtrip(riel.bootstrap, topic, msgs, producer_conf))
    check_roundtrip(msgs, consumed)


# ---------------------------------------------------------------------------------------------- kcat

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
KCAT_HEADERS = (("source", b"riel-e2e"), ("client", b"kcat"))


def run_kcat(
    args: list[str], stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    assert KCAT is not None
    return subprocess.run([KCAT, *args], input=stdin, capture_output=True, timeout=timeout, check=False)


@pytest.mark.skipif(KCAT is None, reason="kcat not installed (.ci/run installs it)")
def test_kcat(riel: RielServer) -> None:
    topic = unique_topic("kcat-roundtrip")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    msgs = [Rec(m.key, m.value, KCAT_HEADERS) for m in make_messages(N)]
    stdin = b"".join((m.key or b"") + b":" + (m.value or b"") + b"\n" for m in msgs)
    header_args = [a for name, value in KCAT_HEADERS for a in ("-H", f"{name}={(value or b'').decode()}")]
    produced = run_kcat(
        ["-P", "-b", riel.bootstrap, "-t", topic, "-K:", *header_args, "-X", "acks=all", "-X", "linger.ms=5"],
        stdin=stdin,
    )
    assert produced.returncode == 0, (
        f"kcat -P failed ({produced.returncode}): {produced.stderr.decode()[-2000:]}"
    )
    assert b"ERROR" not in produced.stderr, produced.stderr.decode()[-2000:]

    consumed: list[Rec] = []
    for p in range(PARTITIONS):
        out = run_kcat(
            [
                "-C",
                "-b",
                riel.bootstrap,
                "-t",
                topic,
                "-p",
                str(p),
                "-o",
                "beginning",
                "-e",
                "-q",
                "-X",
                "check.crcs=true",
                "-f",
                "%p\t%o\t%k\t%s\t%h\n",
            ]
        )
        assert out.returncode == 0, f"kcat -C -p {p} failed ({out.returncode}): {out.stderr.decode()[-2000:]}"
        for line in out.stdout.decode().splitlines():
            part, offset, key, value, headers = line.split("\t")
            hdrs = (
                tuple((n, v.encode()) for n, _, v in (h.partition("=") for h in headers.split(",")))
                if headers
                else ()
            )
            consumed.append(Rec(key.encode(), value.encode(), hdrs, int(part), int(offset)))
    check_roundtrip(msgs, consumed)
