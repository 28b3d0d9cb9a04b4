"""A consumer-group member in its own process, so a test can SIGKILL it (a member that simply stops
heartbeating) or SIGTERM it (a graceful close: commit, LeaveGroup).

    python group_worker.py --client confluent --bootstrap HOST:PORT --group G --topic T --out FILE

Every event is one JSON line in FILE, flushed at once:

    {"event": "assignment", "partitions": [0, 3], "t": ...}   whenever the assignment changes
    {"event": "callback", "kind": "assign"|"revoke", "partitions": [...]}   rebalance listener calls
    {"event": "records", "records": [[partition, offset, value], ...]}   before they are committed
    {"event": "committed", "offsets": {"partition": next_offset}}   after a synchronous commit returned
    {"event": "closed"}   after a graceful close

Offsets are committed synchronously after every batch, so "committed" lines are exactly what the
broker acknowledged. The worker stops on SIGTERM/SIGINT or after --max-seconds (bounded, always).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any, TextIO


class Reporter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.assignment: list[int] | None = None

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
        self.out.flush()

    def assigned(self, partitions: list[int]) -> None:
        current = sorted(partitions)
        if current != self.assignment:
            self.assignment = current
            self.emit("assignment", partitions=current)


def run_confluent(args: argparse.Namespace, rep: Reporter, stop: list[bool]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    conf: dict[str, Any] = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": args.heartbeat_ms,
        "client.id": args.client_id,
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    if args.assignor:
        conf["partition.assignment.strategy"] = args.assignor
    consumer = Consumer(conf)

    def on_assign(c: Any, parts: list[Any]) -> None:
        rep.emit("callback", kind="assign", partitions=sorted(p.partition for p in parts))

    def on_revoke(c: Any, parts: list[Any]) -> None:
        rep.emit("callback", kind="revoke", partitions=sorted(p.partition for p in parts))

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    deadline = time.monotonic() + args.max_seconds
    while not stop[0] and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=500, timeout=0.1)
        rep.assigned([tp.partition for tp in consumer.assignment()])
        records = []
        next_offsets: dict[int, int] = {}
        for m in msgs:
            if m.error() is not None:
                continue
            records.append([m.partition(), m.offset(), m.value().decode()])
            next_offsets[m.partition()] = m.offset() + 1
        if records:
            rep.emit("records", records=records)
            consumer.commit(
                offsets=[TopicPartition(args.topic, p, o) for p, o in next_offsets.items()],
                asynchronous=False,
            )
            rep.emit("committed", offsets=next_offsets)
    consumer.close()
    rep.emit("closed")


def run_kafka_python(args: argparse.Namespace, rep: Reporter, stop: list[bool]) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    conf: dict[str, Any] = {
        "bootstrap_servers": args.bootstrap,
        "group_id": args.group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": args.session_ms,
        "heartbeat_interval_ms": args.heartbeat_ms,
        "client_id": args.client_id,
        "request_timeout_ms": 30_000,
    }
    if args.instance_id:
        conf["group_instance_id"] = args.instance_id
    consumer = KafkaConsumer(**conf)

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            rep.emit("callback", kind="revoke", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            rep.emit("callback", kind="assign", partitions=sorted(tp.partition for tp in assigned))

    consumer.subscribe([args.topic], listener=Listener())
    deadline = time.monotonic() + args.max_seconds
    while not stop[0] and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=100, max_records=500)
        rep.assigned([tp.partition for tp in consumer.assignment()])
        records = []
        next_offsets: dict[int, int] = {}
        for tp, recs in batch.items():
            for r in recs:
                records.append([tp.partition, r.offset, r.value.decode()])
                next_offsets[tp.partition] = r.offset + 1
        if records:
            rep.emit("records", records=records)
            consumer.commit(
                {TopicPartition(args.topic, p): OffsetAndMetadata(o, "", -1) for p, o in next_offsets.items()}
            )
            rep.emit("committed", offsets=next_offsets)
    consumer.close()
    rep.emit("closed")


async def run_aiokafka(args: argparse.Namespace, rep: Reporter, stop: list[bool]) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.__setitem__(0, True))
    conf: dict[str, Any] = {
        "bootstrap_servers": args.bootstrap,
        "group_id": args.group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": args.session_ms,
        "heartbeat_interval_ms": args.heartbeat_ms,
        "client_id": args.client_id,
    }
    if args.instance_id:
        conf["group_instance_id"] = args.instance_id
    consumer = AIOKafkaConsumer(**conf)

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            rep.emit("callback", kind="revoke", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            rep.emit("callback", kind="assign", partitions=sorted(tp.partition for tp in assigned))

    await consumer.start()
    consumer.subscribe([args.topic], listener=Listener())
    deadline = time.monotonic() + args.max_seconds
    try:
        while not stop[0] and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            rep.assigned([tp.partition for tp in consumer.assignment()])
            records = []
            next_offsets: dict[int, int] = {}
            for tp, recs in batch.items():
                for r in recs:
                    records.append([tp.partition, r.offset, r.value.decode()])
                    next_offsets[tp.partition] = r.offset + 1
            if records:
                rep.emit("records", records=records)
                await consumer.commit({TopicPartition(args.topic, p): o for p, o in next_offsets.items()})
                rep.emit("committed", offsets=next_offsets)
    finally:
        await consumer.stop()
    rep.emit("closed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python", "aiokafka"], required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--client-id", default="riel-group-worker")
    parser.add_argument("--instance-id", default=None)
    parser.add_argument("--assignor", default=None)
    parser.add_argument("--session-ms", type=int, default=6000)
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    stop = [False]
    with open(args.out, "a", buffering=1) as out:
        rep = Reporter(out)
        rep.emit("started", pid=__import__("os").getpid())
        if args.client == "aiokafka":
            asyncio.run(run_aiokafka(args, rep, stop))
        else:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.__setitem__(0, True))
            if args.client == "confluent":
                run_confluent(args, rep, stop)
            else:
                run_kafka_python(args, rep, stop)
    sys.exit(0)


if __name__ == "__main__":
    main()
