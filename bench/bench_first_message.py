#!/usr/bin/env python3
"""Time from ``subscribe()`` to the first message, per client, for a lone consumer and a group of three.

    python bench/bench_first_message.py                 # 3 runs per cell, Riel started here
    python bench/bench_first_message.py --runs 5 --initial-delay-ms 3000   # Kafka's default delay

Riel is started here (``python -m riel serve`` on a free loopback port, data in a fresh tmp dir). A
3-partition topic gets 30 messages up front. Each measurement uses a new group id and the client's
default settings except the ones a group consumer cannot do without: bootstrap servers, group id and
auto.offset.reset=earliest (the messages were produced before the group existed). The clock starts
right before ``subscribe()`` (aiokafka: before ``start()``, which is where it connects) and stops when
the consumer holds its first message; for the group, when every one of the three holds one (they
start together, released by a barrier). Every wait is bounded by --timeout. Prints a table of
medians; the target is a lone consumer under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

PARTITIONS = 3
MESSAGES = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def riel_server(initial_delay_ms: int | None) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="riel-bench-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "riel",
            "serve",
            "--data-dir",
            f"{tmp}/data",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ]
        if initial_delay_ms is not None:
            cmd += ["--group-initial-rebalance-delay-ms", str(initial_delay_ms)]
        log = open(Path(tmp) / "riel.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"riel did not start: {(Path(tmp) / 'riel.log').read_text()[-2000:]}")
                time.sleep(0.05)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()


def prepare_topic(bootstrap: str) -> str:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"first-message-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=20)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(MESSAGES):
        producer.produce(topic, value=f"m{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(20) == 0
    return topic


# Each consumer function: wait at the barrier, then return seconds from subscribe to first message.


def confluent_first(
    bootstrap: str, topic: str, group: str, barrier: threading.Barrier, timeout: float
) -> float:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    try:
        barrier.wait(timeout)
        start = time.monotonic()
        consumer.subscribe([topic])
        while time.monotonic() - start < timeout:
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                return time.monotonic() - start
        raise TimeoutError("no message")
    finally:
        consumer.close()


def kafka_python_first(
    bootstrap: str, topic: str, group: str, barrier: threading.Barrier, timeout: float
) -> float:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest")
    try:
        barrier.wait(timeout)
        start = time.monotonic()
        consumer.subscribe([topic])
        while time.monotonic() - start < timeout:
            if consumer.poll(timeout_ms=50, max_records=1):
                return time.monotonic() - start
        raise TimeoutError("no message")
    finally:
        consumer.close()


def aiokafka_first(
    bootstrap: str, topic: str, group: str, barrier: threading.Barrier, timeout: float
) -> float:
    async def run() -> float:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest")
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait, timeout)
        start = time.monotonic()
        await consumer.start()
        try:
            consumer.subscribe([topic])
            await asyncio.wait_for(consumer.getone(), timeout)
            return time.monotonic() - start
        finally:
            await consumer.stop()

    return asyncio.run(run())


CLIENTS: dict[str, Callable[[str, str, str, threading.Barrier, float], float]] = {
    "confluent-kafka": confluent_first,
    "kafka-python": kafka_python_first,
    "aiokafka": aiokafka_first,
}


def measure(
    fn: Callable[[str, str, str, threading.Barrier, float], float],
    bootstrap: str,
    topic: str,
    members: int,
    timeout: float,
) -> float:
    """Seconds until every one of ``members`` consumers of a new group holds a message."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(members)
    results: list[float | BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            value: float | BaseException = fn(bootstrap, topic, group, barrier, timeout)
        except BaseException as exc:  # reported below
            value = exc
        with lock:
            results.append(value)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors or len(results) != members:
        raise RuntimeError(f"{len(errors)} consumers failed: {errors[:1]}")
    return max(r for r in results if isinstance(r, float))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument(
        "--initial-delay-ms",
        type=int,
        default=None,
        help="group.initial.rebalance.delay.ms for the broker (default: Riel's)",
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    rows = []
    with riel_server(args.initial_delay_ms) as bootstrap:
        topic = prepare_topic(bootstrap)
        for name, fn in CLIENTS.items():
            lone = [measure(fn, bootstrap, topic, 1, args.timeout) for _ in range(args.runs)]
            group = [measure(fn, bootstrap, topic, 3, args.timeout) for _ in range(args.runs)]
            rows.append((name, statistics.median(lone), max(lone), statistics.median(group), max(group)))
    delay = "default" if args.initial_delay_ms is None else f"{args.initial_delay_ms} ms"
    print(f"\nsubscribe() -> first message, seconds; {args.runs} runs each; initial rebalance delay {delay}")
    print(
        f"{'client':<16} {'lone median':>12} {'lone max':>9} {'group-of-3 median':>18} {'group-of-3 max':>15}"
    )
    for name, lone_med, lone_max, group_med, group_max in rows:
        print(f"{name:<16} {lone_med:>12.3f} {lone_max:>9.3f} {group_med:>18.3f} {group_max:>15.3f}")
    worst = max(r[2] for r in rows)
    print(f"\nlone consumer target < 1 s: {'met' if worst < 1.0 else 'MISSED'} (worst {worst:.3f} s)")


if __name__ == "__main__":
    main()
