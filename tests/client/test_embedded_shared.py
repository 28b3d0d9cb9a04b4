"""The embedded log and `riel serve` share one on-disk format and one owner at a time; what an
embedded publish acknowledged survives kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer as CKConsumer
from confluent_kafka import Producer as CKProducer
from kafka import KafkaConsumer, KafkaProducer

import riel
from conftest import ServerFactory
from riel.client.partitioner import partition_for_key
from riel.errors import DataDirLockedError


def test_a_directory_written_embedded_is_served_to_kafka_clients(
    tmp_path: Path, riel_factory: ServerFactory
) -> None:
    data = tmp_path / "data"
    keys = [f"customer-{i}" for i in range(40)]
    with riel.open(data) as log:
        log.create_topic("signups", partitions=3)
        embedded_partition = {
            key: log.publish("signups", key.upper(), key=key).result(5).partition for key in keys
        }
        consumer = log.subscribe("signups", group="mailer")
        assert len(list(consumer.messages(max_messages=25, idle_timeout=1))) == 25
        consumer.close()  # commits 25 messages' worth of positions
        committed = sum(log.lag("mailer").values())
    assert committed == 15

    server = riel_factory(data_dir=data)
    # confluent-kafka with murmur2_random and kafka-python's default put each key where embedded did.
    producer = CKProducer({"bootstrap.servers": server.bootstrap, "partitioner": "murmur2_random"})
    delivered: dict[str, int] = {}
    for key in keys:
        producer.produce(
            "signups",
            b"again",
            key=key,
            on_delivery=lambda err, msg: delivered.__setitem__(msg.key().decode(), msg.partition()),
        )
    assert producer.flush(15) == 0
    assert delivered == embedded_partition
    kp = KafkaProducer(bootstrap_servers=server.bootstrap)
    for key in keys[:10]:
        assert kp.send("signups", b"kp", key=key.encode()).get(15).partition == embedded_partition[key]
    kp.close()
    assert all(embedded_partition[k] == partition_for_key(k.encode(), 3) for k in keys)

    # The group resumes over the wire from the offsets it committed embedded.
    kc = KafkaConsumer(
        "signups",
        bootstrap_servers=server.bootstrap,
        group_id="mailer",
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
        enable_auto_commit=False,
    )
    resumed = [m for m in kc if m.value not in (b"again", b"kp")]
    kc.close()
    assert len(resumed) == 15
    assert {m.value.decode() for m in resumed} <= {k.upper() for k in keys}

    # And a plain consumer sees everything the embedded log wrote, keys and values intact.
    cc = CKConsumer(
        {"bootstrap.servers": server.bootstrap, "group.id": "reader", "auto.offset.reset": "earliest"}
    )
    cc.subscribe(["signups"])
    seen: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 20
    while len(seen) < 90 and time.monotonic() < deadline:
        msg = cc.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append((msg.key(), msg.value()))
    cc.close()
    assert sorted(v for _, v in seen if v not in (b"again", b"kp")) == sorted(
        k.upper().encode() for k in keys
    )
    assert all(v == k.decode().upper().encode() for k, v in seen if v not in (b"again", b"kp"))


def test_open_while_the_server_owns_the_directory_says_where_to_connect(
    tmp_path: Path, riel_factory: ServerFactory
) -> None:
    server = riel_factory(data_dir=tmp_path / "data")
    with pytest.raises(DataDirLockedError) as caught:
        riel.open(tmp_path / "data")
    message = str(caught.value)
    assert str(server.pid) in message and f"riel.connect('{server.bootstrap}')" in message


PUBLISHER = textwrap.dedent(
    """
    import sys, riel
    log = riel.open(sys.argv[1])
    i = 0
    while True:
        futures = [log.publish("ledger", f"entry-{i + j}".encode()) for j in range(50)]
        for j, future in enumerate(futures):
            print(future.result(10).offset, i + j, flush=True)
        i += 50
    """
)


def test_acknowledged_publishes_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(data)], stdout=subprocess.PIPE, text=True)
    acked: list[tuple[int, int]] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(acked) < 3000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        offset, index = map(int, line.split())
        acked.append((offset, index))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert len(acked) >= 3000, "the publisher did not get far enough"
    with riel.open(data) as log:
        stored = {m.offset: m.value for m in log.replay("ledger")}
    for offset, index in acked:
        assert stored[offset] == f"entry-{index}".encode()
    assert sorted(stored) == list(range(len(stored)))  # no gaps after recovery
    assert len(set(stored.values())) == len(stored)  # nothing written twice
