#!/usr/bin/env python3
"""Produce throughput of ``riel serve`` while its log cleaner compacts a large topic, against the same
produce with the cleaner idle, in one run.

    python bench/bench_compaction.py                      # 3 rounds, 1,500,000 x 100 B per produce phase
    python bench/bench_compaction.py --quick              # smoke-test sizes (< 30 s)
    python bench/bench_compaction.py --records 5000000 --keys 100000 --rounds 5

One broker is started here (``python -m riel serve``, data dir in a fresh tmp dir on disk, removed at
the end; ``--flush`` as given, default ``always`` like ``riel serve``; ``--log-cleaner-backoff-ms``
small; a warm-up produce first). Each round has two phases, A then B in odd rounds and B then A in
even ones (so that drift over the run hits both alike), measured the same way (confluent-kafka,
acks=all, linger.ms=5, batch.size 1 MB, one partition, a fresh plain topic, ``--messages`` values of
``--value-size`` B):

* **A (baseline)**: the produce phase with nothing to clean.
* **B (cleaning)**: first a compacted-to-be topic is filled with ``--records`` keyed records over
  ``--keys`` keys (segment.bytes ``--segment-bytes``; created with cleanup.policy=delete so that the
  cleaner does not start while it fills), then switched to cleanup.policy=compact with
  min.cleanable.dirty.ratio=0.01 by IncrementalAlterConfigs; as soon as the cleaner's worker process
  (``python -m riel.storage.clean_worker``, a child of the broker, found in /proc) appears, the produce
  phase runs. How much of the phase the worker overlapped is reported: a phase that outlasts the clean
  is only partly a measurement under compaction (raise ``--records`` then).

Reported: msgs/s of every phase with the CPU time the broker, the clean worker and this client used
in it; the B/A ratio per round and of the medians (target: >= 0.80); per round the clean's duration
(the worker's lifetime, sampled every 20 ms), the broker's own log line for it, and the big topic's
partition size before and after. Linux only (/proc). Needs confluent-kafka.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench_throughput import BATCHING_PRODUCER, free_port, machine_environment, running, sigterm_to_exit
from bench_throughput import cpu_seconds as throughput_cpu_seconds

TARGET_RATIO = 0.80
WORKER_MODULE = "riel.storage.clean_worker"
SAMPLE_S = 0.02


class BenchError(Exception):
    pass


@dataclass
class Settings:
    messages: int
    value_size: int
    records: int
    keys: int
    record_size: int
    segment_bytes: int
    rounds: int
    flush: str
    backoff_ms: int
    timeout: float


@dataclass
class Phase:
    name: str  # "A" or "B"
    round: int
    messages: int
    seconds: float
    cleaner_overlap: float = 0.0  # share of the phase during which a clean worker was running
    broker_cpu_s: float = 0.0  # CPU time (user + system) of the broker process during the phase
    worker_cpu_s: float = 0.0  # ... of the clean worker(s)
    client_cpu_s: float = 0.0  # ... of this process (the producer: Python loop and librdkafka threads)

    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Clean:
    round: int
    records: int
    fill_seconds: float
    bytes_before: int
    bytes_after: int = 0
    worker_seconds: float = 0.0  # lifetime of the worker process(es) of this clean
    worker_cpu_s: float = 0.0  # their CPU time (user + system)
    workers: int = 0
    broker_log: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ processes


def riel_cmd(data_dir: Path, port: int, s: Settings) -> list[str]:
    return [
        sys.executable, "-m", "riel", "serve", "--data-dir", str(data_dir),
        "--host", "127.0.0.1", "--port", str(port), "--flush", s.flush, "--num-partitions", "1",
        "--log-cleaner-backoff-ms", str(s.backoff_ms),
    ]  # fmt: skip


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process so far, 0.0 if it is gone."""
    return throughput_cpu_seconds(int(pid)) or 0.0


def clean_workers(parent: int) -> list[int]:
    """Pids of the broker's clean worker processes (children of ``parent`` running WORKER_MODULE)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
                continue
            cmdline = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if WORKER_MODULE.encode() in cmdline:
            found.append(int(entry.name))
    return found


class WorkerWatch:
    """Samples the broker's clean workers every SAMPLE_S in a thread: when each pid was first and last
    seen, so the clean's duration and its overlap with a phase can be worked out."""

    def __init__(self, broker_pid: int) -> None:
        self.broker_pid = broker_pid
        self.seen: dict[int, list[float]] = {}  # pid -> [first seen, last seen (monotonic), CPU s then]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-watch", daemon=True)

    def __enter__(self) -> WorkerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            pids = clean_workers(self.broker_pid)
            cpu = {pid: cpu_seconds(pid) for pid in pids}
            with self._lock:
                for pid in pids:
                    seen = self.seen.setdefault(pid, [now, now, 0.0])
                    seen[1] = now
                    seen[2] = max(seen[2], cpu[pid])
            self._stop.wait(SAMPLE_S)

    def running(self) -> bool:
        return bool(clean_workers(self.broker_pid))

    def intervals(self, since: float) -> list[tuple[float, float]]:
        with self._lock:
            return [(a, b) for a, b, _ in self.seen.values() if b >= since]

    def cpu_since(self, since: float) -> float:
        """CPU seconds of the workers that started at or after ``since``."""
        with self._lock:
            return sum(cpu for first, _, cpu in self.seen.values() if first >= since)

    def cpu(self) -> dict[int, float]:
        """CPU seconds of every worker seen so far (the last sample of those that have exited)."""
        now = {pid: cpu_seconds(pid) for pid in clean_workers(self.broker_pid)}
        with self._lock:
            return {pid: max(seen[2], now.get(pid, 0.0)) for pid, seen in self.seen.items()}

    def overlap(self, start: float, end: float) -> float:
        covered = sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.intervals(start))
        return min(1.0, covered / (end - start)) if end > start else 0.0


def partition_bytes(data_dir: Path, topic: str) -> int:
    """Bytes of a partition's segment files (``*.log``), wherever the data dir nests ``<topic>-0``."""
    dirs = [p for p in data_dir.rglob(f"{topic}-0") if p.is_dir()]
    if len(dirs) != 1:
        raise BenchError(f"expected one directory {topic}-0 under {data_dir}, found {dirs}")
    return sum(p.stat().st_size for p in dirs[0].glob("*.log"))


# ---------------------------------------------------------------------------------- kafka clients


def admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, topic: str, configs: dict[str, str] | None = None) -> None:
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined,unused-ignore]

    client = admin(bootstrap)
    (future,) = client.create_topics(
        [NewTopic(topic, 1, 1, config=configs or {})], request_timeout=30
    ).values()
    future.result(timeout=60)


def alter_topic(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined,unused-ignore]
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    entries = [
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in configs.items()
    ]
    client = admin(bootstrap)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    (future,) = client.incremental_alter_configs([resource], request_timeout=30).values()
    future.result(timeout=60)


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    client = admin(bootstrap)
    for future in client.delete_topics(topics, request_timeout=30).values():
        future.result(timeout=60)


def produce(bootstrap: str, topic: str, count: int, size: int, timeout: float, keys: int = 0) -> float:
    """Produce ``count`` values (keyed over ``keys`` keys if > 0) and wait for every ack; seconds taken."""
    from confluent_kafka import Producer

    errors: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            **BATCHING_PRODUCER,
            "message.timeout.ms": int(timeout * 1000),
            "delivery.report.only.error": True,
            "on_delivery": lambda err, msg: errors.append(err),
        }
    )
    payload = os.urandom(size)
    names = [b"key-%08d" % k for k in range(keys)] if keys > 0 else None
    produce_, poll = producer.produce, producer.poll
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    for i in range(count):
        key = names[i % keys] if names is not None else None
        while True:
            try:
                produce_(topic, payload, key, partition=0)
                break
            except BufferError:
                poll(0.005)
                if time.monotonic() > deadline:
                    raise BenchError(f"{topic}: producer queue still full at message {i}") from None
        if i & 0x3FF == 0:
            poll(0)
    remaining = producer.flush(max(0.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - start
    if remaining:
        raise BenchError(f"{topic}: {remaining} messages undelivered after {timeout}s")
    if errors:
        raise BenchError(f"{topic}: {len(errors)} delivery errors, first: {errors[0]}")
    return elapsed


# ------------------------------------------------------------------------------------------ phases


def timed_produce(
    name: str, round_: int, bootstrap: str, topic: str, s: Settings, watch: WorkerWatch
) -> Phase:
    """One measured produce phase, with the CPU time the broker, the workers and this process used."""
    broker0, workers0, client0 = cpu_seconds(watch.broker_pid), watch.cpu(), time.process_time()
    start = time.monotonic()
    seconds = produce(bootstrap, topic, s.messages, s.value_size, s.timeout)
    end = time.monotonic()
    workers1 = watch.cpu()
    return Phase(
        name,
        round_,
        s.messages,
        seconds,
        watch.overlap(start, end),
        cpu_seconds(watch.broker_pid) - broker0,
        sum(cpu - workers0.get(pid, 0.0) for pid, cpu in workers1.items()),
        time.process_time() - client0,
    )


def phase_a(bootstrap: str, s: Settings, round_: int, watch: WorkerWatch) -> Phase:
    if watch.running():  # a leftover clean would spoil the baseline
        wait_until(lambda: not watch.running(), s.timeout, "the previous clean to finish")
    topic = f"plain-a{round_}-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic)
    phase = timed_produce("A", round_, bootstrap, topic, s, watch)
    delete_topics(bootstrap, [topic])
    return phase


def phase_b(
    bootstrap: str, data_dir: Path, log: Path, s: Settings, round_: int, watch: WorkerWatch
) -> tuple[Phase, Clean]:
    big = f"compact-{round_}-{uuid.uuid4().hex[:6]}"
    create_topic(
        bootstrap,
        big,
        {"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": str(s.segment_bytes)},
    )
    fill = produce(bootstrap, big, s.records, s.record_size, s.timeout, keys=s.keys)
    clean = Clean(round_, s.records, fill, partition_bytes(data_dir, big))
    plain = f"plain-b{round_}-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, plain)
    log_mark = log.stat().st_size

    triggered = time.monotonic()
    alter_topic(bootstrap, big, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
    wait_until(watch.running, s.timeout, "the clean worker to start")
    phase = timed_produce("B", round_, bootstrap, plain, s, watch)

    def compacted() -> bool:
        lines = broker_lines(log, log_mark, big)
        failed = [line for line in lines if "failed" in line]
        if failed:
            raise BenchError(f"the broker could not compact {big}: {failed[0]}")
        return not watch.running() and any(f"compacted {data_dir}" in line for line in lines)

    wait_until(compacted, s.timeout, f"the compaction of {big} to finish")
    spans = watch.intervals(triggered)
    clean.workers = len(spans)
    clean.worker_seconds = sum(b - a for a, b in spans)
    clean.worker_cpu_s = watch.cpu_since(triggered)
    clean.broker_log = [line for line in broker_lines(log, log_mark, big) if "compacted" in line]
    clean.bytes_after = partition_bytes(data_dir, big)
    delete_topics(bootstrap, [big, plain])  # bounds the disk used by many rounds
    return phase, clean


def broker_lines(log: Path, mark: int, topic: str) -> list[str]:
    with open(log, "rb") as f:
        f.seek(mark)
        text = f.read().decode(errors="replace")
    return [line for line in text.splitlines() if f"{topic}-0" in line and "compact" in line]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(SAMPLE_S)


# ------------------------------------------------------------------------------------------- report


def print_phases(phases: list[Phase]) -> None:
    header = (
        "round",
        "phase",
        "messages",
        "seconds",
        "msgs/s",
        "cleaner running",
        "CPU s broker/worker/client",
    )
    rows = [
        (
            str(p.round),
            "A baseline" if p.name == "A" else "B cleaning",
            f"{p.messages:,}",
            f"{p.seconds:.2f}",
            f"{p.rate():,.0f}",
            f"{p.cleaner_overlap:.0%}",
            f"{p.broker_cpu_s:.1f} / {p.worker_cpu_s:.1f} / {p.client_cpu_s:.1f}",
        )
        for p in phases
    ]
    print_rows(header, rows)


def print_cleans(cleans: list[Clean]) -> None:
    header = (
        "round", "records", "fill s", "log before", "log after", "clean s", "worker CPU s",
        "removed (broker log)",
    )  # fmt: skip
    rows = []
    for c in cleans:
        removed = [
            m.group(1) for line in c.broker_log if (m := re.search(r"(\d+) record\(s\) removed", line))
        ]
        rows.append(
            (
                str(c.round),
                f"{c.records:,}",
                f"{c.fill_seconds:.1f}",
                f"{c.bytes_before / 1e6:,.1f} MB",
                f"{c.bytes_after / 1e6:,.1f} MB",
                f"{c.worker_seconds:.1f}" + (f" ({c.workers} workers)" if c.workers > 1 else ""),
                f"{c.worker_cpu_s:.1f}",
                " + ".join(removed) or "?",
            )
        )
    print_rows(header, rows)


def print_rows(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def summary(phases: list[Phase]) -> dict[str, float]:
    a = [p.rate() for p in sorted(phases, key=lambda p: p.round) if p.name == "A"]
    b = [p.rate() for p in sorted(phases, key=lambda p: p.round) if p.name == "B"]
    per_round = [pb / pa for pa, pb in zip(a, b, strict=True) if pa > 0]
    return {
        "median_a_msgs_per_s": statistics.median(a),
        "median_b_msgs_per_s": statistics.median(b),
        "ratio_of_medians": statistics.median(b) / statistics.median(a),
        "median_round_ratio": statistics.median(per_round),
        "min_round_ratio": min(per_round),
    }


def environment(s: Settings) -> dict[str, str]:
    return machine_environment(**{"riel flush policy": s.flush, "log cleaner backoff": f"{s.backoff_ms} ms"})


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test (< 30 s)")
    parser.add_argument("--messages", type=int, help="messages per produce phase (1,500,000; quick 20,000)")
    parser.add_argument("--value-size", type=int, default=100, help="bytes per produced value (100)")
    parser.add_argument(
        "--records", type=int, help="records in each topic to compact (3,000,000; quick 50,000)"
    )
    parser.add_argument("--keys", type=int, help="distinct keys of those records (10,000; quick 1,000)")
    parser.add_argument(
        "--record-size", type=int, default=100, help="bytes per compacted record's value (100)"
    )
    parser.add_argument(
        "--segment-bytes", type=int, help="segment.bytes of the compacted topic (8 MiB; quick 1 MiB)"
    )
    parser.add_argument("--rounds", type=int, help="A/B rounds (3; quick 1)")
    parser.add_argument(
        "--flush", default="always", help="riel serve --flush (default always, as riel serve)"
    )
    parser.add_argument(
        "--backoff-ms", type=int, default=100, help="riel serve --log-cleaner-backoff-ms (100)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per step (120)")
    parser.add_argument("--workdir", type=Path, help="parent of the tmp dir (default: system tmp, on disk)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    quick = args.quick
    s = Settings(
        messages=args.messages or (20_000 if quick else 1_500_000),
        value_size=args.value_size,
        records=args.records or (50_000 if quick else 3_000_000),
        keys=args.keys or (1_000 if quick else 10_000),
        record_size=args.record_size,
        segment_bytes=args.segment_bytes or ((1 if quick else 8) << 20),
        rounds=args.rounds or (1 if quick else 3),
        flush=args.flush,
        backoff_ms=args.backoff_ms,
        timeout=args.timeout,
    )
    if min(s.messages, s.value_size, s.records, s.keys, s.record_size, s.segment_bytes, s.rounds) <= 0:
        parser.error("sizes and counts must be positive")
    if s.keys > s.records:
        parser.error("--keys must not exceed --records")

    signal.signal(signal.SIGTERM, sigterm_to_exit)
    env = environment(s)
    print(
        f"Riel compaction benchmark: produce {s.messages:,} x {s.value_size} B, with the cleaner idle (A) "
        f"and compacting {s.records:,} x {s.record_size} B records over {s.keys:,} keys (B), "
        f"{s.rounds} round(s)"
    )
    for k, v in env.items():
        print(f"  {k}: {v}")
    workdir = Path(tempfile.mkdtemp(prefix="riel-bench-compaction-", dir=args.workdir))
    print(f"  workdir: {workdir}", flush=True)
    phases: list[Phase] = []
    cleans: list[Clean] = []
    try:
        data_dir, log, port = workdir / "data", workdir / "riel.log", free_port()
        with running(riel_cmd(data_dir, port, s), port, log) as proc, WorkerWatch(proc.pid) as watch:
            bootstrap = f"127.0.0.1:{port}"
            warmup = f"warmup-{uuid.uuid4().hex[:6]}"  # first connections, page cache, allocator
            create_topic(bootstrap, warmup)
            produce(bootstrap, warmup, min(s.messages, 200_000), s.value_size, s.timeout)
            delete_topics(bootstrap, [warmup])
            for r in range(1, s.rounds + 1):
                if r % 2 == 1:  # A first in odd rounds, B first in even ones: drift hits both alike
                    phases.append(phase_a(bootstrap, s, r, watch))
                    print(f"  round {r} A: {phases[-1].rate():,.0f} msgs/s", flush=True)
                phase, clean = phase_b(bootstrap, data_dir, log, s, r, watch)
                phases.append(phase)
                cleans.append(clean)
                print(
                    f"  round {r} B: {phase.rate():,.0f} msgs/s "
                    f"(cleaner running {phase.cleaner_overlap:.0%}); "
                    f"clean {clean.worker_seconds:.1f} s, {clean.bytes_before / 1e6:.1f} -> "
                    f"{clean.bytes_after / 1e6:.1f} MB",
                    flush=True,
                )
                if r % 2 == 0:
                    phases.append(phase_a(bootstrap, s, r, watch))
                    print(f"  round {r} A: {phases[-1].rate():,.0f} msgs/s", flush=True)
    except (BenchError, RuntimeError) as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print("\nProduce phases")
    print_phases(phases)
    print("\nCompactions (B)")
    print_cleans(cleans)
    result = summary(phases)
    verdict = "meets" if result["ratio_of_medians"] >= TARGET_RATIO else "BELOW"
    print(
        f"\nB/A: {result['ratio_of_medians']:.2f} (medians {result['median_b_msgs_per_s']:,.0f} / "
        f"{result['median_a_msgs_per_s']:,.0f} msgs/s); per round median {result['median_round_ratio']:.2f}, "
        f"min {result['min_round_ratio']:.2f}; {verdict} the target >= {TARGET_RATIO:.2f}"
    )
    if any(p.name == "B" and p.cleaner_overlap < 0.9 for p in phases):
        print("note: the cleaner finished before some B phase did; raise --records for a full overlap")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": env,
                    "settings": asdict(s),
                    "phases": [{**asdict(p), "msgs_per_s": p.rate()} for p in phases],
                    "cleans": [asdict(c) for c in cleans],
                    "summary": result,
                    "target_ratio": TARGET_RATIO,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
