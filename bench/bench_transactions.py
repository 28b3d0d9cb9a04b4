#!/usr/bin/env python3
"""Transactional produce throughput against plain idempotent produce, side by side in one run.

    python bench/bench_transactions.py                      # 3 rounds, 100,000 x 100 B per phase
    python bench/bench_transactions.py --smoke              # small counts, one round (< 30 s)
    python bench/bench_transactions.py --txn-sizes 10,100,1000 --rounds 5 --json out.json
    python bench/bench_transactions.py --bootstrap 127.0.0.1:9092   # a broker you run yourself

One broker is started here (``python -m riel serve``, data dir in a fresh tmp dir on disk, removed at
the end; ``--flush`` as given, default ``always`` like ``riel serve``), unless ``--bootstrap`` names
one. Every phase produces ``--messages`` values of ``--size`` B to a fresh one-partition topic with
confluent-kafka (acks=all, linger.ms=5 or --linger-ms, batch.size 1 MB, no compression), in one of these
modes:

* **idempotent**: ``enable.idempotence=true``, produce everything, flush;
* **txn-N**: ``transactional.id`` set, ``init_transactions`` (not timed), then transactions of N
  messages each (begin, produce N, commit; commit_transaction flushes), the last one possibly shorter.

The clock runs from the first produce to the last acknowledgement (or commit). Rounds interleave the
modes, each round in a rotated order so that drift over the run hits every mode alike. After each phase
the topic is checked: its log end must hold every message plus, for transactions, one commit marker
each; unless ``--no-verify``, a read_committed consumer counts the messages back. Reported: msgs/s per
phase with the broker's CPU time (when started here), the median per mode, and the ratio of each
transactional median to the idempotent one (1.00 = as fast). Every step is bounded by ``--timeout``
and the whole run by ``--max-seconds`` (rounds that would start later are skipped, and say so).
Needs confluent-kafka.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench_throughput import (
    BATCHING_PRODUCER,
    cpu_seconds,
    free_port,
    machine_environment,
    running,
    sigterm_to_exit,
)

IDEMPOTENT = "idempotent"
PRODUCER_CONF: dict[str, Any] = dict(BATCHING_PRODUCER)


class BenchError(Exception):
    pass


@dataclass
class Settings:
    messages: int
    size: int
    txn_sizes: list[int]
    rounds: int
    flush: str
    timeout: float
    max_seconds: float
    verify: bool
    linger_ms: int = 5


@dataclass
class Phase:
    mode: str  # "idempotent" or "txn-N"
    round: int
    messages: int
    seconds: float
    transactions: int = 0
    broker_cpu_s: float | None = None
    verified: bool = False

    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def mode_name(txn_size: int | None) -> str:
    return IDEMPOTENT if txn_size is None else f"txn-{txn_size}"


# ------------------------------------------------------------------------------------------- broker


def riel_cmd(data_dir: Path, port: int, flush: str) -> list[str]:
    return [
        sys.executable, "-m", "riel", "serve", "--data-dir", str(data_dir),
        "--host", "127.0.0.1", "--port", str(port), "--flush", flush, "--num-partitions", "1",
        "--no-http",
    ]  # fmt: skip


@contextlib.contextmanager
def broker(args: argparse.Namespace, s: Settings, workdir: Path) -> Iterator[tuple[str, int | None]]:
    """(bootstrap, broker pid or None): the --bootstrap broker, or a riel serve started here."""
    if args.bootstrap:
        yield args.bootstrap, None
        return
    port = free_port()
    with running(riel_cmd(workdir / "data", port, s.flush), port, workdir / "riel.log") as proc:
        yield f"127.0.0.1:{port}", proc.pid


def create_topic(bootstrap: str, topic: str, timeout: float) -> None:
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=timeout).values()
    future.result(timeout=timeout)


def delete_topic(bootstrap: str, topic: str, timeout: float) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.delete_topics([topic], request_timeout=timeout).values()
    with contextlib.suppress(Exception):  # best effort: keeps the broker's disk use flat
        future.result(timeout=timeout)


# ------------------------------------------------------------------------------------------- phases


def produce_phase(
    bootstrap: str, topic: str, warmup: str, s: Settings, txn_size: int | None, rnd: int, pid: int | None
) -> Phase:
    """One timed phase. Before the clock starts, the producer has its producer id (init_transactions, or
    the idempotent producer's own), its connection and both topics' metadata: one untimed message (in a
    transaction of its own for txn modes) goes to ``warmup``."""
    from confluent_kafka import KafkaException, Producer

    errors: list[Any] = []
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        **PRODUCER_CONF,
        "linger.ms": s.linger_ms,
        "message.timeout.ms": int(s.timeout * 1000),
        "delivery.report.only.error": True,
        "on_delivery": lambda err, msg: errors.append(err),
    }
    if txn_size is None:
        conf["enable.idempotence"] = True
    else:
        conf["transactional.id"] = f"bench-{uuid.uuid4().hex[:10]}"
        conf["transaction.timeout.ms"] = int(max(60.0, s.timeout) * 1000)
    producer = Producer(conf)
    if txn_size is not None:
        try:
            producer.init_transactions(s.timeout)
        except KafkaException as exc:
            raise BenchError(f"{mode_name(txn_size)}: init_transactions: {exc.args[0]}") from exc
    payload = os.urandom(s.size)
    produce, poll = producer.produce, producer.poll
    try:
        producer.list_topics(topic, timeout=s.timeout)
        if txn_size is not None:
            producer.begin_transaction()
        produce(warmup, payload, partition=0)
        if txn_size is not None:
            producer.commit_transaction(s.timeout)
        elif producer.flush(s.timeout):
            raise BenchError(f"{IDEMPOTENT}: warm-up message undelivered")
    except KafkaException as exc:
        raise BenchError(f"{mode_name(txn_size)}: warm-up: {exc.args[0]}") from exc
    deadline = time.monotonic() + s.timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"{mode_name(txn_size)}: not done within --timeout {s.timeout:.0f} s")
        return remaining

    def send(n: int) -> None:
        for i in range(n):
            while True:
                try:
                    produce(topic, payload, partition=0)
                    break
                except BufferError:
                    poll(0.005)
                    left()
            if i & 0x3FF == 0:
                poll(0)

    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    transactions = 0
    try:
        if txn_size is None:
            send(s.messages)
            if producer.flush(left()):
                raise BenchError(f"{IDEMPOTENT}: messages undelivered at the deadline")
        else:
            sent = 0
            while sent < s.messages:
                n = min(txn_size, s.messages - sent)
                producer.begin_transaction()
                send(n)
                producer.commit_transaction(left())
                sent += n
                transactions += 1
    except KafkaException as exc:
        raise BenchError(f"{mode_name(txn_size)}: {exc.args[0]}") from exc
    elapsed = time.perf_counter() - start
    cpu_after = cpu_seconds(pid)
    if errors:
        raise BenchError(f"{mode_name(txn_size)}: {len(errors)} delivery errors, first: {errors[0]}")
    broker_cpu = None if cpu is None or cpu_after is None else cpu_after - cpu
    return Phase(mode_name(txn_size), rnd, s.messages, elapsed, transactions, broker_cpu)


def check_topic(bootstrap: str, topic: str, phase: Phase, s: Settings) -> None:
    """Log end = messages + one commit marker per transaction; optionally count back read_committed."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    def consumer(isolation: str) -> Any:
        return Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-{uuid.uuid4().hex[:8]}",  # required by librdkafka; never joined
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": isolation,
                "fetch.queue.backoff.ms": 0,
                "fetch.max.bytes": 52_428_800,
                "max.partition.fetch.bytes": 10_485_760,
            }
        )

    probe = consumer("read_uncommitted")
    try:
        _, end = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=s.timeout, cached=False)
    finally:
        probe.close()
    expected_end = phase.messages + phase.transactions
    if end != expected_end:
        raise BenchError(f"{phase.mode}: log end {end}, expected {expected_end} (messages + markers)")
    if not s.verify:
        return
    reader = consumer("read_committed")
    got = 0
    deadline = time.monotonic() + s.timeout
    try:
        reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        while True:
            if time.monotonic() > deadline:
                raise BenchError(f"{phase.mode}: read_committed counted {got} in {s.timeout:.0f} s")
            msgs = reader.consume(num_messages=10_000, timeout=0.5)
            eof = False
            for m in msgs:
                err = m.error()
                if err is None:
                    got += 1
                elif err.code() == KafkaError._PARTITION_EOF and m.offset() >= end:
                    eof = True
                elif err.code() != KafkaError._PARTITION_EOF:
                    raise BenchError(f"{phase.mode}: consumer error {err}")
            if eof:
                break
    finally:
        reader.close()
    if got != phase.messages:
        raise BenchError(f"{phase.mode}: read_committed counted {got}, produced {phase.messages}")
    phase.verified = True


# ------------------------------------------------------------------------------------------ reports


def medians(phases: Sequence[Phase]) -> dict[str, float]:
    modes = dict.fromkeys(p.mode for p in phases)
    return {m: statistics.median(p.rate() for p in phases if p.mode == m) for m in modes}


def ratios(phases: Sequence[Phase]) -> dict[str, dict[str, Any]]:
    """Per transactional mode: median / idempotent median, and the same ratio round by round."""
    med = medians(phases)
    base = med.get(IDEMPOTENT)
    out: dict[str, dict[str, Any]] = {}
    if not base:
        return out
    by_round = {p.round: p.rate() for p in phases if p.mode == IDEMPOTENT}
    for mode, rate in med.items():
        if mode == IDEMPOTENT:
            continue
        rounds = [p.rate() / by_round[p.round] for p in phases if p.mode == mode and by_round.get(p.round)]
        out[mode] = {"ratio_of_medians": rate / base, "per_round": rounds}
    return out


def print_rows(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_report(phases: Sequence[Phase], s: Settings) -> None:
    print()
    header: tuple[str, ...] = (
        "round", "mode", "messages", "txns", "seconds", "msgs/s", "MB/s", "broker CPU s", "verified",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [
        (
            str(p.round),
            p.mode,
            f"{p.messages:,}",
            f"{p.transactions:,}",
            f"{p.seconds:.2f}",
            f"{p.rate():,.0f}",
            f"{p.rate() * s.size / 1e6:.1f}",
            "-" if p.broker_cpu_s is None else f"{p.broker_cpu_s:.1f}",
            "yes" if p.verified else "no",
        )
        for p in sorted(phases, key=lambda p: (p.round, p.mode))
    ]
    print_rows(header, rows)
    print()
    med = medians(phases)
    rat = ratios(phases)
    header = ("mode", "rounds", "median msgs/s", "vs idempotent", "per round")
    summary: list[tuple[str, ...]] = []  # one row per mode
    for mode, rate in med.items():
        r = rat.get(mode)
        summary.append(
            (
                mode,
                str(sum(1 for p in phases if p.mode == mode)),
                f"{rate:,.0f}",
                "1.00x" if mode == IDEMPOTENT else (f"{r['ratio_of_medians']:.2f}x" if r else "n/a"),
                "" if r is None else " ".join(f"{x:.2f}" for x in r["per_round"]),
            )
        )
    print_rows(header, summary)
    print("\nRatio: transactional msgs/s / idempotent msgs/s (median of rounds; 1.00x = as fast).")


def environment(s: Settings, bootstrap: str | None) -> dict[str, str]:
    return machine_environment(broker=bootstrap or f"riel serve started here, --flush {s.flush}")


# --------------------------------------------------------------------------------------------- main


def parse_sizes(text: str) -> list[int]:
    sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError("transaction sizes must be positive integers")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="small counts, one round (< 30 s)")
    parser.add_argument("--messages", type=int, help="messages per phase (100,000; smoke 10,000)")
    parser.add_argument("--size", type=int, default=100, help="bytes per message value (100)")
    parser.add_argument(
        "--txn-sizes",
        type=parse_sizes,
        help="messages per transaction, comma separated (100,10000; smoke 100,1000)",
    )
    parser.add_argument("--rounds", type=int, help="rounds of every mode (3; smoke 1)")
    parser.add_argument(
        "--linger-ms",
        type=int,
        default=5,
        help="the producers' linger.ms (5): a small transaction waits this long for its batch",
    )
    parser.add_argument(
        "--flush", default="always", help="riel serve --flush (default always, as riel serve)"
    )
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="bench this broker instead of starting one")
    parser.add_argument("--timeout", type=float, help="seconds allowed per step (120; smoke 20)")
    parser.add_argument(
        "--max-seconds", type=float, help="no round starts after this many seconds (300; smoke 25)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the read_committed count-back")
    parser.add_argument("--workdir", type=Path, help="parent of the tmp dir (default: system tmp, on disk)")
    parser.add_argument("--keep", action="store_true", help="keep the tmp data dir and broker log")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    smoke = args.smoke
    s = Settings(
        messages=args.messages or (10_000 if smoke else 100_000),
        size=args.size,
        txn_sizes=args.txn_sizes or ([100, 1_000] if smoke else [100, 10_000]),
        rounds=args.rounds or (1 if smoke else 3),
        flush=args.flush,
        timeout=args.timeout or (20.0 if smoke else 120.0),
        max_seconds=args.max_seconds or (25.0 if smoke else 300.0),
        verify=not args.no_verify,
        linger_ms=args.linger_ms,
    )
    if min(s.messages, s.size, s.rounds) <= 0:
        parser.error("--messages, --size and --rounds must be positive")

    signal.signal(signal.SIGTERM, sigterm_to_exit)
    env = environment(s, args.bootstrap)
    modes: list[int | None] = [None, *s.txn_sizes]
    print(
        f"Riel transactions benchmark: {s.messages:,} x {s.size} B per phase; modes "
        f"{', '.join(mode_name(m) for m in modes)}; {s.rounds} round(s)"
    )
    for k, v in env.items():
        print(f"  {k}: {v}")
    workdir = Path(tempfile.mkdtemp(prefix="riel-bench-txn-", dir=args.workdir))
    print(f"  workdir: {workdir}", flush=True)
    phases: list[Phase] = []
    skipped = 0
    failure: str | None = None
    started = time.monotonic()
    try:
        with broker(args, s, workdir) as (bootstrap, pid):
            warmup = f"bench-txn-warmup-{uuid.uuid4().hex[:6]}"  # connections, page cache, allocator
            create_topic(bootstrap, warmup, s.timeout)
            produce_phase(
                bootstrap, warmup, warmup, replace(s, messages=min(s.messages, 20_000)), 1_000, 0, pid
            )
            for rnd in range(1, s.rounds + 1):
                if time.monotonic() - started > s.max_seconds:
                    skipped = s.rounds - rnd + 1
                    print(f"  --max-seconds {s.max_seconds:.0f} reached: {skipped} round(s) skipped")
                    break
                shift = (rnd - 1) % len(modes)
                for txn_size in modes[shift:] + modes[:shift]:
                    topic = f"bench-txn-{mode_name(txn_size)}-{uuid.uuid4().hex[:8]}"
                    create_topic(bootstrap, topic, s.timeout)
                    phase = produce_phase(bootstrap, topic, warmup, s, txn_size, rnd, pid)
                    check_topic(bootstrap, topic, phase, s)
                    delete_topic(bootstrap, topic, s.timeout)
                    phases.append(phase)
                    print(
                        f"  round {rnd} {phase.mode}: {phase.rate():,.0f} msgs/s ({phase.seconds:.2f} s)",
                        flush=True,
                    )
            delete_topic(bootstrap, warmup, s.timeout)
    except BenchError as exc:
        failure = str(exc)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if phases:
        print_report(phases, s)
    if failure:
        print(f"\nFAILED: {failure}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": env,
                    "settings": asdict(s),
                    "phases": [{**asdict(p), "msgs_per_s": p.rate()} for p in phases],
                    "medians_msgs_per_s": medians(phases) if phases else {},
                    "ratios": ratios(phases) if phases else {},
                    "skipped_rounds": skipped,
                    "error": failure,
                },
                indent=2,
            )
        )
    return 1 if failure or not phases else 0


if __name__ == "__main__":
    sys.exit(main())
