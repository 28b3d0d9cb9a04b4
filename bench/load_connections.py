#!/usr/bin/env python3
"""Many connections at once: does Riel serve them all, lose nothing, and keep its memory bounded?

    python bench/load_connections.py                          # 1,000 connections for 60 s
    python bench/load_connections.py --connections 200 --seconds 10 --json out.json

Starts ``riel serve`` (fresh tmp data dir, ``--frame-deadline-ms 2000``), then for ``--seconds``:

- ``--connections`` raw connections each send an ApiVersions or Metadata request every ``--interval``
  seconds (jittered) and check the answer (correlation id);
- a confluent-kafka producer sends ``--rate`` numbered messages per second (acks=all) to a 1-partition
  topic while a consumer reads them; at the end every message must have been read exactly once, in order;
- a slow-loris connection (2 bytes of a frame header, then silence) and an oversized-frame connection
  (a size prefix of 2 GB) are opened a third of the way in; both must be cut by the broker (the slow one
  within the frame deadline plus a second) while everything else keeps working;
- the broker's RSS is sampled from /proc every 0.25 s; its peak (and the kernel's VmHWM) is reported.

The open-files limit is raised to the hard limit here (and ``riel serve`` raises its own). Everything
started here is stopped here; the whole run is bounded by ``--seconds`` plus ``--grace``. Exit status 0
only if every check passed. Needs: confluent-kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FRAME_DEADLINE_MS = 2_000
TOPIC = "load"


@dataclass
class Report:
    connections: int
    seconds: float
    connections_opened: int = 0
    connections_served: int = 0  # got every answer and a final one at the end
    connections_failed: int = 0
    requests_answered: int = 0
    produced: int = 0
    delivered: int = 0
    consumed: int = 0
    consumed_in_order_exactly_once: bool = False
    slow_loris_cut_after_s: float | None = None
    oversized_cut_after_s: float | None = None
    peak_rss_mb: float = 0.0
    vm_hwm_mb: float = 0.0
    rss_at_start_mb: float = 0.0
    rss_at_end_mb: float = 0.0
    broker_cut_log_lines: int = 0
    open_files_limit: int = 0
    failures: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_open_files_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        raise SystemExit(f"need {needed} open files, the hard limit is {hard}: raise it (ulimit -Hn)")
    return soft


def memory_kb(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def request(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    client_id = b"load"
    payload = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id + body
    return struct.pack(">i", len(payload)) + payload


METADATA_BODY = struct.pack(">ih", 1, len(TOPIC)) + TOPIC.encode()  # Metadata v0: [load]


async def one_connection(
    port: int, index: int, end: list[float], interval: float, counts: list[int], opened: asyncio.Event
) -> str | None:
    """Open, then ask something every ~interval until end[0], then once more; None if all went well."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        opened.set()
        return f"connect: {exc}"
    opened.set()
    rng = random.Random(index)
    correlation = 0
    try:
        await asyncio.sleep(rng.uniform(0, interval))
        last = False
        while True:
            correlation += 1
            if correlation % 2:
                writer.write(request(18, 0, correlation, b""))  # ApiVersions v0
            else:
                writer.write(request(3, 0, correlation, METADATA_BODY))
            await writer.drain()
            size = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), 30))[0]
            payload = await asyncio.wait_for(reader.readexactly(size), 30)
            if struct.unpack(">i", payload[:4])[0] != correlation:
                return f"correlation id {struct.unpack('>i', payload[:4])[0]} != {correlation}"
            counts[index] += 1
            if last:
                return None
            pause = interval * rng.uniform(0.5, 1.5)
            if time.monotonic() + pause >= end[0]:
                await asyncio.sleep(max(0.0, end[0] - time.monotonic()))
                last = True
            else:
                await asyncio.sleep(pause)
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def cut_after(sock: socket.socket, limit_s: float) -> float | None:
    """Seconds until the broker closed ``sock``, or None if still open after ``limit_s``."""
    started = time.monotonic()
    sock.settimeout(limit_s)
    try:
        while sock.recv(4096):
            pass
        return time.monotonic() - started
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started
    except TimeoutError:
        return None
    finally:
        sock.close()


def hostile(port: int, report: Report) -> None:
    loris = socket.create_connection(("127.0.0.1", port))
    loris.sendall(b"\x00\x00")  # half a size prefix, then silence
    huge = socket.create_connection(("127.0.0.1", port))
    huge.sendall(struct.pack(">i", 0x7FFFFFFF) + b"\x00\x12")
    report.oversized_cut_after_s = cut_after(huge, 5)
    report.slow_loris_cut_after_s = cut_after(loris, FRAME_DEADLINE_MS / 1000 + 5)


def produce(bootstrap: str, seconds: float, rate: int, report: Report, done: threading.Event) -> None:
    from confluent_kafka import Producer

    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            report.delivered += 1

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "client.id": "steady-producer"}
    )
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) + 1
            while report.produced < due:
                producer.produce(TOPIC, value=b"%012d" % report.produced, partition=0, on_delivery=delivered)
                report.produced += 1
            producer.poll(0.01)
        left = producer.flush(60)
        if left or errors:
            report.failures.append(f"producer: {left} undelivered, {len(errors)} errors {errors[:3]}")
    finally:
        done.set()


def consume(bootstrap: str, report: Report, producing: threading.Event, deadline: float) -> None:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "load-check",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "client.id": "steady-consumer",
            "fetch.queue.backoff.ms": 0,
        }
    )
    expected = 0
    in_order = True
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        while time.monotonic() < deadline:
            if producing.is_set() and expected >= report.delivered:
                break
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        report.failures.append(f"consumer: {err}")
                    continue
                if msg.value() != b"%012d" % expected:
                    in_order = False
                expected += 1
        report.consumed = expected
        report.consumed_in_order_exactly_once = in_order and expected == report.delivered == report.produced
    finally:
        consumer.close()


async def drive(args: argparse.Namespace, port: int, pid: int, report: Report) -> None:
    counts = [0] * args.connections
    rss: list[int] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.25):
            rss.append(memory_kb(pid, "VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    report.rss_at_start_mb = memory_kb(pid, "VmRSS") / 1024

    # Open the connections 50 at a time (the listen backlog is finite); the clock starts once all are
    # open (they read their end time from ``end``).
    tasks: list[asyncio.Task[str | None]] = []
    end = [float("inf")]
    for start in range(0, args.connections, 50):
        events = []
        for i in range(start, min(start + 50, args.connections)):
            opened = asyncio.Event()
            events.append(opened)
            tasks.append(asyncio.create_task(one_connection(port, i, end, args.interval, counts, opened)))
        await asyncio.gather(*(e.wait() for e in events))
    report.connections_opened = args.connections
    stop_at = end[0] = time.monotonic() + args.seconds

    bootstrap = f"127.0.0.1:{port}"
    producing_done = threading.Event()
    producer = threading.Thread(
        target=produce, args=(bootstrap, args.seconds, args.rate, report, producing_done)
    )
    consumer = threading.Thread(
        target=consume, args=(bootstrap, report, producing_done, stop_at + args.grace), daemon=True
    )
    producer.start()
    consumer.start()
    await asyncio.sleep(args.seconds / 3)
    await asyncio.to_thread(hostile, port, report)

    results = await asyncio.gather(*tasks)
    await asyncio.to_thread(producer.join, args.grace)
    await asyncio.to_thread(consumer.join, args.grace)
    stop_sampling.set()
    sampler.join()
    failures = [r for r in results if r is not None]
    report.connections_failed = len(failures)
    report.connections_served = sum(1 for r, c in zip(results, counts, strict=True) if r is None and c >= 2)
    report.requests_answered = sum(counts)
    if failures:
        report.failures.append(f"{len(failures)} connections failed, first: {failures[:3]}")
    report.peak_rss_mb = max(rss, default=0) / 1024
    report.vm_hwm_mb = memory_kb(pid, "VmHWM") / 1024
    report.rss_at_end_mb = memory_kb(pid, "VmRSS") / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between a connection's requests")
    parser.add_argument("--rate", type=int, default=500, help="messages per second produced")
    parser.add_argument("--flush", default="always")
    parser.add_argument("--grace", type=float, default=60.0, help="extra seconds allowed to finish")
    parser.add_argument("--max-peak-rss-mb", type=float, default=1024.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    report = Report(args.connections, args.seconds)
    report.open_files_limit = raise_open_files_limit(args.connections * 2 + 200)
    workdir = Path(tempfile.mkdtemp(prefix="riel-load-"))
    port = free_port()
    log_path = workdir / "riel.log"
    cmd = [
        sys.executable, "-m", "riel", "serve",
        "--data-dir", str(workdir / "data"),
        "--port", str(port),
        "--no-http",
        "--flush", args.flush,
        "--frame-deadline-ms", str(FRAME_DEADLINE_MS),
        "--max-connections", str(args.connections + 100),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"riel serve did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(30)
        started = time.monotonic()
        asyncio.run(asyncio.wait_for(drive(args, port, proc.pid, report), args.seconds + 2 * args.grace + 60))
        elapsed = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            report.failures.append("riel serve ignored SIGTERM")
        log_text = log_path.read_text(errors="replace")
        shutil.rmtree(workdir, ignore_errors=True)

    report.broker_cut_log_lines = log_text.count("closing connection from")
    if report.connections_served != args.connections:
        report.failures.append(f"only {report.connections_served} of {args.connections} connections served")
    if not report.consumed_in_order_exactly_once:
        report.failures.append(
            f"produced {report.produced}, delivered {report.delivered}, consumed {report.consumed} "
            "(not every message exactly once in order)"
        )
    if (
        report.slow_loris_cut_after_s is None
        or report.slow_loris_cut_after_s > FRAME_DEADLINE_MS / 1000 + 1.5
    ):
        report.failures.append(f"slow-loris connection not cut in time ({report.slow_loris_cut_after_s})")
    if report.oversized_cut_after_s is None or report.oversized_cut_after_s > 2:
        report.failures.append(f"oversized-frame connection not cut at once ({report.oversized_cut_after_s})")
    if "frame deadline" not in log_text or "socket.request.max.bytes" not in log_text:
        report.failures.append("the broker did not log both cuts")
    if report.peak_rss_mb > args.max_peak_rss_mb:
        report.failures.append(f"peak RSS {report.peak_rss_mb:.0f} MB over {args.max_peak_rss_mb:.0f} MB")
    if "Traceback" in log_text:
        report.failures.append("a traceback in the broker log")

    print(f"riel load test: {args.connections} connections for {args.seconds:.0f} s ({elapsed:.0f} s in all)")
    print(f"  connections served      {report.connections_served} / {args.connections}")
    print(f"  requests answered       {report.requests_answered:,} (ApiVersions/Metadata)")
    print(
        f"  messages                produced {report.produced:,}, delivered {report.delivered:,}, consumed "
        f"{report.consumed:,}, in order exactly once: {report.consumed_in_order_exactly_once}"
    )
    print(f"  slow-loris cut after    {report.slow_loris_cut_after_s} s (deadline {FRAME_DEADLINE_MS} ms)")
    print(f"  oversized frame cut     {report.oversized_cut_after_s} s")
    print(
        f"  broker RSS              start {report.rss_at_start_mb:.1f} MB, peak {report.peak_rss_mb:.1f} MB "
        f"(VmHWM {report.vm_hwm_mb:.1f} MB), end {report.rss_at_end_mb:.1f} MB"
    )
    print(f"  open files limit        {report.open_files_limit}")
    print(
        "  result                  "
        + ("OK" if not report.failures else "FAILED: " + "; ".join(report.failures))
    )
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
