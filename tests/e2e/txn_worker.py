"""A consume-transform-produce worker in its own process (confluent-kafka), so a test can SIGKILL it
mid-transaction, or leave it hanging with an open transaction while a successor with the same
transactional.id fences it.

    python txn_worker.py --bootstrap HOST:PORT --group G --input IN --output OUT \\
        --transactional-id T --events FILE [--txn-size 5] [--abort-rate 0.2] [--hang-after-commits K]

The producer's init_transactions comes first (it fences any previous instance and aborts its open
transaction), then the consumer (group G, read_committed) subscribes to IN. Each loop takes up to
--txn-size input records and, in one transaction, produces ``out:<input value>`` to OUT (same key, a
header ``src=<partition>:<offset>``) and sends the input offsets with send_offsets_to_transaction. With
probability --abort-rate it aborts instead of committing and rewinds every assigned partition to the
group's committed offset. Every event is one JSON line in FILE, flushed at once:

    {"event": "started", "pid": ...}
    {"event": "initialized"}                  init_transactions returned
    {"event": "committed", "txn": n, "inputs": [[p, o], ...], "offsets": {"p": next}}
    {"event": "aborted", "txn": n, "inputs": [[p, o], ...]}
    {"event": "rewound", "offsets": {"p": offset}}
    {"event": "hanging", "txn": n}            --hang-after-commits reached: transaction left open
    {"event": "fenced", "code": ..., "fatal": ..., "error": ...}   the hanging transaction's commit failed
    {"event": "error", "error": ...}          anything unexpected (exit code 2)
    {"event": "closed"}

With --hang-after-commits K the worker, after K committed transactions, begins one more, produces,
flushes and sends its offsets, reports "hanging" and waits (without polling the consumer) for
SIGUSR1; then it tries to commit: that must fail because a successor fenced it ("fenced", exit 0) -
a commit that succeeds is reported as an "error" (exit 2). SIGTERM/SIGINT stop the loop between
transactions; --max-seconds bounds everything.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from typing import Any, TextIO

TXN_TIMEOUT_MS = 60_000  # long: a hanging worker must be fenced, never timed out


class Reporter:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
        self.out.flush()


def describe(exc: BaseException) -> dict[str, Any]:
    err: Any = exc.args[0] if exc.args else None
    if hasattr(err, "code"):
        return {"code": err.name(), "fatal": bool(err.fatal()), "error": str(err)}
    return {"code": type(exc).__name__, "fatal": None, "error": repr(exc)}


def run(args: argparse.Namespace, rep: Reporter, flags: dict[str, bool]) -> int:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.max_seconds
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "transactional.id": args.transactional_id,
            "transaction.timeout.ms": TXN_TIMEOUT_MS,
            "linger.ms": 2,
            "client.id": f"txn-worker-{os.getpid()}",
        }
    )
    producer.init_transactions(30)
    rep.emit("initialized")
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": args.session_ms,
            "heartbeat.interval.ms": 1000,
            "client.id": f"txn-worker-{os.getpid()}",
        }
    )
    consumer.subscribe([args.input])
    commits = txn = 0
    try:
        while not flags["stop"] and time.monotonic() < deadline:
            msgs = consumer.consume(num_messages=args.txn_size, timeout=0.2)
            records: list[Any] = []  # confluent Messages (partition() is typed int | None)
            for m in msgs:
                if m.error() is not None:
                    rep.emit("consumer_error", error=str(m.error()))
                    continue
                records.append(m)
            if not records:
                continue
            txn += 1
            producer.begin_transaction()
            next_offsets: dict[int, int] = {}
            for m in records:
                producer.produce(
                    args.output,
                    key=m.key(),
                    value=b"out:" + (m.value() or b""),
                    headers=[("src", f"{m.partition()}:{m.offset()}".encode())],
                )
                next_offsets[m.partition()] = max(next_offsets.get(m.partition(), 0), m.offset() + 1)
            inputs = [[m.partition(), m.offset()] for m in records]
            offsets = [TopicPartition(args.input, p, o) for p, o in sorted(next_offsets.items())]
            if args.hang_after_commits is not None and commits >= args.hang_after_commits:
                return hang(args, rep, producer, consumer, offsets, txn, deadline, flags)
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            if rng.random() < args.abort_rate:
                producer.abort_transaction(30)
                rep.emit("aborted", txn=txn, inputs=inputs)
                committed = consumer.committed(consumer.assignment(), timeout=30)
                rewound = {}
                for tp in committed:
                    offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                    consumer.seek(TopicPartition(args.input, tp.partition, offset))
                    rewound[str(tp.partition)] = tp.offset
                rep.emit("rewound", offsets=rewound)
            else:
                producer.commit_transaction(30)
                commits += 1
                rep.emit(
                    "committed",
                    txn=txn,
                    inputs=inputs,
                    offsets={str(p): o for p, o in next_offsets.items()},
                )
    except KafkaException as exc:
        rep.emit("error", **describe(exc))
        return 2
    consumer.close()
    rep.emit("closed")
    return 0


def hang(
    args: argparse.Namespace,
    rep: Reporter,
    producer: Any,
    consumer: Any,
    offsets: list[Any],
    txn: int,
    deadline: float,
    flags: dict[str, bool],
) -> int:
    """Leave transaction ``txn`` open (its records flushed to the log, its offsets sent) until SIGUSR1,
    then try to commit it: a successor with the same transactional.id must have fenced us."""
    from confluent_kafka import KafkaException

    remaining = producer.flush(30)
    if remaining:
        rep.emit("error", error=f"{remaining} records of the hanging transaction not delivered")
        return 2
    producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
    rep.emit("hanging", txn=txn)
    while not flags["resume"]:
        if time.monotonic() > deadline:
            rep.emit("error", error="never resumed (SIGUSR1) before --max-seconds")
            return 2
        time.sleep(0.02)
    try:
        producer.commit_transaction(30)
    except KafkaException as exc:
        rep.emit("fenced", **describe(exc))
        consumer.close()  # leaves the group at once: the successor need not wait for a session timeout
        rep.emit("closed")
        return 0
    rep.emit("error", error="the zombie's commit succeeded after a successor's init_transactions")
    return 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--transactional-id", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--txn-size", type=int, default=5)
    parser.add_argument("--abort-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--hang-after-commits", type=int, default=None)
    parser.add_argument("--session-ms", type=int, default=6000)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    flags = {"stop": False, "resume": False}
    with open(args.events, "a", buffering=1) as out:
        rep = Reporter(out)
        rep.emit("started", pid=os.getpid())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: flags.__setitem__("stop", True))
        signal.signal(signal.SIGUSR1, lambda *_: flags.__setitem__("resume", True))
        try:
            code = run(args, rep, flags)
        except Exception as exc:
            rep.emit("error", **describe(exc))
            code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
