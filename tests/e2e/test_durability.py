"""Crash durability: kill -9 mid-stream loses no acknowledged message (flush=always), and a torn tail
written by hand is truncated on restart while everything before it still serves."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any

import pytest

from conftest import RielServer, ServerFactory
from e2e.helpers import (
    Rec,
    confluent_consume,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    make_messages,
    newest_segment,
    partition_dir,
    unique_topic,
)

PARTITIONS = 3


class StreamingProducer(threading.Thread):
    """confluent-kafka, acks=all + idempotence, producing numbered messages until told to stop and
    recording every acknowledged (partition, offset, value) from the delivery callback."""

    def __init__(
        self, bootstrap: str, topic: str, limit: int = 500_000, message_timeout_ms: int = 4000
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.limit = bootstrap, topic, limit
        self.message_timeout_ms = message_timeout_ms
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed = 0
        self.delivery_errors: list[str] = []
        self.client_errors: list[str] = []
        self.sent = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def on_delivery(self, err: Any, msg: Any) -> None:
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed += 1
                self.delivery_errors.append(str(err))

    def on_error(self, err: Any) -> None:
        with self.lock:
            self.client_errors.append(f"{err.name()} fatal={err.fatal()}: {err.str()}")

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def run(self) -> None:
        from confluent_kafka import Producer

        try:
            producer = Producer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 2,
                    "message.timeout.ms": self.message_timeout_ms,
                    "reconnect.backoff.max.ms": 200,
                    "error_cb": self.on_error,
                    "queue.buffering.max.messages": 1_000,  # keep the stream flowing, never all acked
                }
            )
            while not self.stop_event.is_set() and self.sent < self.limit:
                try:
                    producer.produce(
                        self.topic,
                        key=str(self.sent % 16).encode(),
                        value=b"v%08d" % self.sent,
                        on_delivery=self.on_delivery,
                    )
                    self.sent += 1
                except BufferError:
                    producer.poll(0.05)
                producer.poll(0)
            # Broker gone: undelivered messages fail after message.timeout.ms; or back: they are delivered.
            producer.flush(self.message_timeout_ms / 1000 + 15)
        except BaseException as exc:
            self.error = exc


@pytest.mark.slow
def test_kill9_mid_stream_loses_no_acknowledged_message(riel_factory: ServerFactory) -> None:
    server = riel_factory(flush="always")
    topic = unique_topic("kill9")
    create_topic(server.bootstrap, topic, PARTITIONS)

    producer = StreamingProducer(server.bootstrap, topic)
    producer.start()
    deadline = time.monotonic() + 60
    while producer.acked_count() < 3_000:
        assert producer.is_alive(), f"producer died early: {producer.error!r}"
        assert time.monotonic() < deadline, f"only {producer.acked_count()} acks in 60 s"
        time.sleep(0.01)
    server.kill9()
    acked_at_kill = producer.acked_count()
    producer.stop_event.set()
    producer.join(30)
    assert not producer.is_alive(), "producer thread did not finish"
    assert producer.error is None, repr(producer.error)

    server.start()
    acked = list(producer.acked)
    assert len(acked) >= acked_at_kill
    print(f"sent {producer.sent}, acked {len(acked)} ({acked_at_kill} when killed), failed {producer.failed}")
    assert producer.failed > 0, "nothing was in flight when the broker was killed: the test proved little"
    ends = {p: hw for p in range(PARTITIONS) for _, hw in [confluent_watermarks(server.bootstrap, topic, p)]}
    assert sum(ends.values()) >= len(acked), f"log ends {ends} hold fewer records than {len(acked)} acks"

    from confluent_kafka import OFFSET_BEGINNING

    consumed = confluent_consume(
        server.bootstrap, topic, dict.fromkeys(range(PARTITIONS), OFFSET_BEGINNING), ends
    )
    by_position = {(r.partition, r.offset): r.value for r in consumed}
    for p in range(PARTITIONS):
        offsets = sorted(o for (pp, o) in by_position if pp == p)
        assert offsets == list(range(ends[p])), (
            f"partition {p}: offsets not contiguous from 0 up to {ends[p]}"
        )
    for p, off, value in acked:
        assert by_position.get((p, off)) == value, (
            f"acked {value!r} at {p}/{off}, found {by_position.get((p, off))!r}"
        )
    dupes = [v for v, n in Counter(r.value for r in consumed).items() if n > 1]
    assert not dupes, f"duplicated messages after restart: {dupes[:5]}"

    # The restarted broker keeps appending after the recovered end.
    acks = confluent_produce(server.bootstrap, topic, [Rec(b"after", b"restart")], partition=0)
    assert acks == [(0, ends[0])]


def _garbage(segment: bytes) -> bytes:
    return os.urandom(777)


def _half_batch(segment: bytes) -> bytes:
    """The first half of the segment's first batch: a plausible header whose batch runs past the end."""
    batch_len = int.from_bytes(segment[8:12], "big")
    return segment[: (12 + batch_len) // 2]


def _bad_crc_batch(segment: bytes) -> bytes:
    """A whole copy of the first batch with one payload byte flipped (CRC no longer matches)."""
    batch_len = int.from_bytes(segment[8:12], "big")
    batch = bytearray(segment[: 12 + batch_len])
    batch[-1] ^= 0xFF
    return bytes(batch)


def _zeros(segment: bytes) -> bytes:
    """Preallocated-but-unwritten space, as after a crash on some filesystems."""
    return b"\x00" * 4096


@pytest.mark.parametrize(
    "tail", [_garbage, _half_batch, _bad_crc_batch, _zeros], ids=lambda f: f.__name__[1:]
)
@pytest.mark.parametrize("stop", ["kill9", "sigterm"])
def test_torn_tail_is_truncated_on_restart(riel_factory: ServerFactory, tail: Any, stop: str) -> None:
    server: RielServer = riel_factory(flush="always")
    topic = unique_topic("torn")
    create_topic(server.bootstrap, topic, 1)
    msgs = make_messages(500)
    confluent_produce(server.bootstrap, topic, msgs, partition=0, conf={"batch.num.messages": 50})
    if stop == "kill9":
        server.kill9()
    else:
        assert server.stop() == 0

    segment = newest_segment(partition_dir(server.data_dir, topic, 0))
    content = segment.read_bytes()
    assert len(content) > 0
    with open(segment, "ab") as f:
        f.write(tail(content))

    server.start()
    assert confluent_watermarks(server.bootstrap, topic, 0) == (0, 500)
    from confluent_kafka import OFFSET_BEGINNING

    consumed = confluent_consume(server.bootstrap, topic, {0: OFFSET_BEGINNING}, {0: 500})
    assert [r.offset for r in consumed] == list(range(500))
    assert [r.content() for r in consumed] == [m.content() for m in msgs]

    more = make_messages(20, tag="more")
    assert confluent_produce(server.bootstrap, topic, more, partition=0) == [(0, 500 + i) for i in range(20)]
    consumed = confluent_consume(server.bootstrap, topic, {0: OFFSET_BEGINNING}, {0: 520})
    assert [r.content() for r in consumed] == [m.content() for m in msgs + more]
    assert [r.offset for r in consumed] == list(range(520))

    # And after one more restart (the truncation itself was durable), still the same.
    server.restart()
    assert confluent_watermarks(server.bootstrap, topic, 0) == (0, 520)


@pytest.mark.slow
def test_idempotent_producer_survives_kill9_and_restart_without_duplicates(
    riel_factory: ServerFactory,
) -> None:
    """The producer keeps running while the broker is killed and restarted: batches that were written but
    not acknowledged are retried with the same producer id and sequence numbers, and the restarted broker
    (producer state recovered from the log) must deduplicate them. Every message ends up exactly once,
    in order, and every message is acknowledged (the timeout outlasts the restart)."""
    server = riel_factory(flush="always")
    topic = unique_topic("kill9-idem")
    create_topic(server.bootstrap, topic, PARTITIONS)
    total = 12_000

    producer = StreamingProducer(server.bootstrap, topic, limit=total, message_timeout_ms=60_000)
    producer.start()
    deadline = time.monotonic() + 60
    while producer.acked_count() < 3_000:
        assert producer.is_alive(), f"producer died early: {producer.error!r}"
        assert time.monotonic() < deadline, f"only {producer.acked_count()} acks in 60 s"
        time.sleep(0.01)
    server.kill9()
    server.start()
    producer.join(120)
    assert not producer.is_alive(), "producer thread did not finish"
    assert producer.error is None, repr(producer.error)
    assert not producer.delivery_errors, (
        f"{producer.failed} failed deliveries: {producer.delivery_errors[:3]}"
    )
    assert producer.sent == total
    assert len(producer.acked) == total

    ends = {p: hw for p in range(PARTITIONS) for _, hw in [confluent_watermarks(server.bootstrap, topic, p)]}
    from confluent_kafka import OFFSET_BEGINNING

    consumed = confluent_consume(
        server.bootstrap, topic, dict.fromkeys(range(PARTITIONS), OFFSET_BEGINNING), ends
    )
    counts = Counter(r.value for r in consumed)
    dupes = sorted(v for v, n in counts.items() if n > 1 and v is not None)
    assert not dupes, f"{len(dupes)} messages duplicated by the retry after restart, e.g. {dupes[:5]}"
    assert len(consumed) == total, f"{len(consumed)} records for {total} messages"
    by_position = {(r.partition, r.offset): r.value for r in consumed}
    for p, off, value in producer.acked:
        assert by_position.get((p, off)) == value, (
            f"acked {value!r} at {p}/{off}, found {by_position.get((p, off))!r}"
        )
    for p in range(PARTITIONS):
        seqs = [
            int((r.value or b"v-1")[1:]) for r in sorted(consumed, key=lambda r: r.offset) if r.partition == p
        ]
        assert seqs == sorted(seqs), f"partition {p}: messages out of produce order after the restart"
