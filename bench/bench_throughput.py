#!/usr/bin/env python3
"""Produce/consume throughput of Riel against Redis Streams (and optionally any Kafka-compatible broker).

    python bench/bench_throughput.py                    # 1,000,000 x 100 B and 100,000 x 1 KiB
    python bench/bench_throughput.py --quick            # 10x fewer messages
    python bench/bench_throughput.py --client kcat --no-redis   # Riel driven by kcat only
    python bench/bench_throughput.py --flush interval:10000:1000 --kafka 127.0.0.1:9092

Riel is started here (``python -m riel serve``, data dir in a fresh tmp dir on disk, ``--flush`` as
given, default ``always``) and driven with confluent-kafka: acks=all, batching producer
(linger.ms/batch.size/batch.num.messages), consumer with assign() and fetch.queue.backoff.ms=0.
Redis is started here too (redis-server on a free loopback port, appendonly yes, appendfsync everysec)
and driven with redis-py: pipelined XADD batches, XREAD batches. ``--kafka HOST:PORT`` adds a broker you
run yourself, driven exactly like Riel. Every phase is bounded by ``--timeout``; everything this script
starts it also stops. Needs: confluent-kafka, redis (redis-py), redis-server on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WORKLOADS = [(1_000_000, 100), (100_000, 1024)]  # (messages, bytes per message)
# Issue 2's targets for this 2-core machine, in messages per second (produce, consume) by message size;
# 300 MB/s at 1 KiB is 292,969 msgs/s (MB = 10^6 bytes, as in the tables).
TARGETS = {100: (1_500_000, 1_000_000), 1024: (300_000_000 // 1024, 300_000_000 // 1024)}
REDIS_PIPELINE = 1_000
REDIS_READ_COUNT = 10_000


class PhaseTimeout(Exception):
    pass


@dataclass
class Phase:
    """One timed phase. ``client_cpu_s`` is the client's own CPU time (user + system) during it: the
    Python process for confluent-kafka and redis-py (librdkafka's threads included), the kcat child."""

    messages: int = 0
    seconds: float = 0.0
    error: str | None = None
    client_cpu_s: float | None = None

    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 and not self.error else 0.0


@dataclass
class Result:
    """One system x workload. ``*_cpu_s`` is the server process's CPU time during the phase (user +
    system), when the script started that server: on a 2-core machine shared by client and server it
    says how much of the wall time the server itself needed."""

    system: str
    workload: str
    count: int
    size: int
    produce: Phase = field(default_factory=Phase)
    consume: Phase = field(default_factory=Phase)
    produce_cpu_s: float | None = None
    consume_cpu_s: float | None = None


# ------------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"process exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} not accepting connections after {timeout}s")


@contextlib.contextmanager
def running(cmd: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, log)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_delta(before: float | None, pid: int | None) -> float | None:
    after = cpu_seconds(pid)
    return None if before is None or after is None else after - before


def own_cpu() -> float:
    """This process's user + system CPU time, all threads (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    """User + system CPU time of the children waited for so far (kcat; the servers are waited for
    only at the end, so they never count here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sha256_mb_per_s(seconds: float = 0.5) -> float:
    """hashlib SHA-256 over 1 MiB buffers: what Riel's hash chain (SHA-256 over every stored byte)
    costs at least, measured on this machine in this run."""
    data = os.urandom(1 << 20)
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        hashlib.sha256(data).digest()
        done += len(data)
    return done / elapsed / 1e6


def riel_cmd(data_dir: Path, port: int, flush: str) -> list[str]:
    return [
        sys.executable, "-m", "riel", "serve", "--data-dir", str(data_dir),
        "--host", "127.0.0.1", "--port", str(port), "--flush", flush, "--num-partitions", "1",
    ]  # fmt: skip


def redis_cmd(redis_server: str, data_dir: Path, port: int) -> list[str]:
    return [
        redis_server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
        "--protected-mode", "no", "--logfile", "",
    ]  # fmt: skip


# ---------------------------------------------------------------------------------- kafka protocol

# librdkafka producer settings for throughput: acks=all, big batches, a short linger, no compression.
BATCHING_PRODUCER: dict[str, Any] = {
    "acks": "all",
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "compression.type": "none",
}


def kafka_create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=30).values()
    future.result(timeout=60)


def kafka_produce(bootstrap: str, topic: str, count: int, size: int, timeout: float) -> Phase:
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
    produce, poll = producer.produce, producer.poll
    cpu = own_cpu()
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    for i in range(count):
        try:
            produce(topic, payload, partition=0)
        except BufferError:
            while True:
                poll(0.005)
                if time.monotonic() > deadline:
                    raise PhaseTimeout(f"producer queue full at message {i}") from None
                try:
                    produce(topic, payload, partition=0)
                    break
                except BufferError:
                    continue
        if i & 0x3FF == 0:
            poll(0)
    remaining = producer.flush(max(0.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - start
    cpu = own_cpu() - cpu
    if remaining:
        raise PhaseTimeout(f"{remaining} messages undelivered at the deadline")
    if errors:
        return Phase(count, elapsed, f"{len(errors)} delivery errors, first: {errors[0]}")
    return Phase(count, elapsed, client_cpu_s=cpu)


def kafka_consume(bootstrap: str, topic: str, count: int, size: int, timeout: float) -> Phase:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",  # required by librdkafka; assign() never joins
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "fetch.queue.backoff.ms": 0,
            "fetch.wait.max.ms": 100,
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 10_485_760,
            "queued.max.messages.kbytes": 262_144,
        }
    )
    try:
        cpu = own_cpu()
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        got = nbytes = 0
        while got < count:
            if time.monotonic() > deadline:
                raise PhaseTimeout(f"consumed {got} of {count}")
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    return Phase(got, time.perf_counter() - start, f"consumer error: {err}")
                got += 1
                nbytes += len(msg.value() or b"")
        elapsed = time.perf_counter() - start
        cpu = own_cpu() - cpu
        if nbytes != count * size:
            return Phase(got, elapsed, f"consumed {nbytes} bytes, expected {count * size}")
        return Phase(got, elapsed, client_cpu_s=cpu)
    finally:
        consumer.close()


KCAT_PRODUCER_CONF = [
    "acks=all",
    "linger.ms=5",
    "batch.size=1000000",
    "batch.num.messages=10000",
    "queue.buffering.max.messages=2000000",
    "queue.buffering.max.kbytes=2097151",
    "compression.type=none",
]


def kcat_produce(bootstrap: str, topic: str, count: int, size: int, timeout: float) -> Phase:
    """kcat (C, librdkafka) reading one message per line from a file: the broker, not a Python loop
    in the client, is what this measures."""
    with tempfile.NamedTemporaryFile(suffix=".lines") as lines:
        line = b"x" * size + b"\n"
        block = line * 10_000
        for _ in range(count // 10_000):
            lines.write(block)
        lines.write(line * (count % 10_000))
        lines.flush()
        cmd = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", "0", "-l", lines.name]
        for conf in KCAT_PRODUCER_CONF:
            cmd += ["-X", conf]
        cpu = children_cpu()
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, timeout=timeout)
        elapsed = time.perf_counter() - start
        cpu = children_cpu() - cpu
    if done.returncode != 0:
        return Phase(0, elapsed, f"kcat -P exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return Phase(count, elapsed, client_cpu_s=cpu)


def kcat_consume(bootstrap: str, topic: str, count: int, size: int, timeout: float) -> Phase:
    cmd = [
        "kcat",
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-p",
        "0",
        "-o",
        "beginning",
        "-c",
        str(count),
        "-q",
        "-f",
        "%s",
        "-X",
        "fetch.max.bytes=52428800",
        "-X",
        "max.partition.fetch.bytes=10485760",
        "-X",
        "receive.message.max.bytes=60000000",
        "-X",
        "queued.max.messages.kbytes=262144",
    ]
    # kcat writes the payloads to a file in memory (tmpfs) rather than to a pipe read here, so the
    # phase measures kcat and the broker, not a Python reader competing with them for the 2 cores.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryFile(dir=shm) as out:
        cpu = children_cpu()
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PhaseTimeout(f"consumed {out.tell() // size} of {count}") from None
        elapsed = time.perf_counter() - start
        cpu = children_cpu() - cpu
        if done.returncode != 0:
            return Phase(0, elapsed, f"kcat -C exited {done.returncode}: {done.stderr.decode()[-300:]}")
        out.seek(0)
        nbytes = 0
        while chunk := out.read(1 << 20):  # kcat_produce sent b"x" * size per message
            if chunk.count(b"x") != len(chunk):
                return Phase(nbytes // size, elapsed, f"unexpected bytes after {nbytes} consumed bytes")
            nbytes += len(chunk)
    if nbytes != count * size:
        return Phase(nbytes // size, elapsed, f"consumed {nbytes} bytes, expected {count * size}")
    return Phase(count, elapsed, client_cpu_s=cpu)


def bench_kafka(
    system: str,
    bootstrap: str,
    workload: str,
    count: int,
    size: int,
    timeout: float,
    client: str = "confluent",
    server_pid: int | None = None,
) -> Result:
    result = Result(f"{system} [{client}]", workload, count, size)
    topic = f"bench-{size}-{uuid.uuid4().hex[:8]}"
    produce, consume = (kcat_produce, kcat_consume) if client == "kcat" else (kafka_produce, kafka_consume)
    try:
        kafka_create_topic(bootstrap, topic)
        cpu = cpu_seconds(server_pid)
        result.produce = produce(bootstrap, topic, count, size, timeout)
        result.produce_cpu_s = cpu_delta(cpu, server_pid)
        if result.produce.error is None:
            cpu = cpu_seconds(server_pid)
            result.consume = consume(bootstrap, topic, count, size, timeout)
            result.consume_cpu_s = cpu_delta(cpu, server_pid)
    except Exception as exc:
        phase = result.consume if result.produce.seconds else result.produce
        phase.error = f"{type(exc).__name__}: {exc}"
    return result


# ------------------------------------------------------------------------------------ redis streams


def redis_produce(client: Any, stream: str, count: int, size: int, timeout: float) -> Phase:
    payload = os.urandom(size)
    pipe = client.pipeline(transaction=False)
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    for i in range(count):
        pipe.xadd(stream, {b"v": payload})
        if (i + 1) % REDIS_PIPELINE == 0 or i + 1 == count:
            pipe.execute()
            if time.monotonic() > deadline:
                raise PhaseTimeout(f"produced {i + 1} of {count}")
    elapsed = time.perf_counter() - start
    length = client.xlen(stream)
    if length != count:
        return Phase(count, elapsed, f"stream holds {length} entries, expected {count}")
    return Phase(count, elapsed)


def redis_consume(client: Any, stream: str, count: int, size: int, timeout: float) -> Phase:
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    last_id: bytes | str = "0-0"
    got = nbytes = 0
    while got < count:
        if time.monotonic() > deadline:
            raise PhaseTimeout(f"consumed {got} of {count}")
        reply = client.xread({stream: last_id}, count=REDIS_READ_COUNT, block=500)
        for _name, entries in reply:
            for entry_id, fields in entries:
                got += 1
                nbytes += len(fields[b"v"])
                last_id = entry_id
    elapsed = time.perf_counter() - start
    if nbytes != count * size:
        return Phase(got, elapsed, f"consumed {nbytes} bytes, expected {count * size}")
    return Phase(got, elapsed)


def redis_produce_raw(port: int, stream: str, count: int, size: int, timeout: float) -> Phase:
    """XADD pipelined over a plain socket with the command bytes built once: measures the server, not
    redis-py's per-command packing in Python (which caps the redis-py path well below the server)."""
    payload = os.urandom(size)
    name = stream.encode()
    command = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\nv\r\n$%d\r\n%s\r\n" % (
        len(name),
        name,
        size,
        payload,
    )
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=max(30.0, timeout)) as sock:
        sent = 0
        buf = b""
        while sent < count:
            n = min(REDIS_PIPELINE, count - sent)
            sock.sendall(command * n)
            replies = 0
            while replies < n:  # each reply is a bulk string "$<len>\r\n<id>\r\n"
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                buf += chunk
                if buf[:1] == b"-":
                    raise RuntimeError(f"redis error: {buf[:200]!r}")
                complete = buf.count(b"\r\n") // 2
                replies += complete
                cut = 0
                for _ in range(complete * 2):
                    cut = buf.index(b"\r\n", cut) + 2
                buf = buf[cut:]
            sent += n
            if time.monotonic() > deadline:
                raise PhaseTimeout(f"produced {sent} of {count}")
    return Phase(count, time.perf_counter() - start)


def bench_redis(
    port: int,
    workload: str,
    count: int,
    size: int,
    timeout: float,
    raw: bool = False,
    server_pid: int | None = None,
) -> Result:
    import redis

    result = Result("redis-streams (raw RESP)" if raw else "redis-streams", workload, count, size)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=max(30.0, timeout))
    stream = f"bench-{size}-{uuid.uuid4().hex[:8]}"
    try:
        cpu, mine = cpu_seconds(server_pid), own_cpu()
        if raw:
            result.produce = redis_produce_raw(port, stream, count, size, timeout)
        else:
            result.produce = redis_produce(client, stream, count, size, timeout)
        result.produce.client_cpu_s = own_cpu() - mine
        result.produce_cpu_s = cpu_delta(cpu, server_pid)
        if raw:
            length = client.xlen(stream)
            if length != count:
                result.produce.error = f"stream holds {length} entries, expected {count}"
        if result.produce.error is None:
            cpu, mine = cpu_seconds(server_pid), own_cpu()
            result.consume = redis_consume(client, stream, count, size, timeout)
            result.consume.client_cpu_s = own_cpu() - mine
            result.consume_cpu_s = cpu_delta(cpu, server_pid)
        client.delete(stream)
    except Exception as exc:
        phase = result.consume if result.produce.seconds else result.produce
        phase.error = f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return result


# ------------------------------------------------------------------------------------------- report


def fmt_rate(phase: Phase, size: int) -> tuple[str, str]:
    if phase.error:
        return ("FAILED", "")
    if not phase.seconds:
        return ("-", "-")
    rate = phase.rate()
    return (f"{rate:,.0f}", f"{rate * size / 1e6:,.1f}")


def fmt_cpu(cpu_s: float | None, phase: Phase) -> str:
    if cpu_s is None or not phase.messages:
        return "-"
    return f"{cpu_s * 1e6 / phase.messages:.2f}"


def ceiling(phase: Phase, server_cpu_s: float | None) -> float | None:
    """Messages per second this client and server could reach if every core were busy with nothing
    but them: cores / (client + server CPU seconds per message). An upper bound measured in the run;
    a rate near it means the machine, not waiting, was the limit."""
    if phase.error or not phase.messages or phase.client_cpu_s is None or server_cpu_s is None:
        return None
    per_message = (phase.client_cpu_s + server_cpu_s) / phase.messages
    return (os.cpu_count() or 1) / per_message if per_message > 0 else None


def fmt_ceiling(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_table(results: list[Result], reference_systems: list[str]) -> None:
    header = (
        "workload",
        "system",
        "produce msg/s",
        "produce MB/s",
        "consume msg/s",
        "consume MB/s",
        "server CPU µs/msg (prod/cons)",
        "client CPU µs/msg (prod/cons)",
        "CPU ceiling msg/s (prod/cons)",
    )
    rows = []
    for r in results:
        rows.append(
            (
                r.workload,
                r.system,
                *fmt_rate(r.produce, r.size),
                *fmt_rate(r.consume, r.size),
                f"{fmt_cpu(r.produce_cpu_s, r.produce)} / {fmt_cpu(r.consume_cpu_s, r.consume)}",
                f"{fmt_cpu(r.produce.client_cpu_s, r.produce)} / "
                f"{fmt_cpu(r.consume.client_cpu_s, r.consume)}",
                f"{fmt_ceiling(ceiling(r.produce, r.produce_cpu_s))} / "
                f"{fmt_ceiling(ceiling(r.consume, r.consume_cpu_s))}",
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))

    ratios = []
    for workload in dict.fromkeys(r.workload for r in results):
        riels = [r for r in results if r.workload == workload and r.system.startswith("riel")]
        for riel, ref_name in ((riel, name) for riel in riels for name in reference_systems):
            ref = next(
                (
                    r
                    for r in results
                    if r.workload == workload
                    and r.system.startswith(ref_name)
                    and riel.system.endswith(r.system[len(ref_name) :])
                ),
                None,
            )
            if ref is None:
                continue
            cells = []
            for label, a, b in (
                ("produce", riel.produce, ref.produce),
                ("consume", riel.consume, ref.consume),
            ):
                cells.append(
                    f"{label} {a.rate() / b.rate():.2f}x" if a.rate() and b.rate() else f"{label} n/a"
                )
            ratios.append(f"  {workload}: {riel.system} / {ref.system}: " + ", ".join(cells))
    if ratios:
        print("\nRatio (Riel throughput / reference throughput; > 1 means Riel is faster):")
        print("\n".join(ratios))
    failures = [
        (r, p, name)
        for r in results
        for name, p in (("produce", r.produce), ("consume", r.consume))
        if p.error
    ]
    for r, p, name in failures:
        print(f"\n{r.system} {r.workload} {name} failed: {p.error}")


def print_targets(results: list[Result], sha256_rate: float) -> None:
    """Issue 2's targets next to what each Riel run measured and its CPU ceiling on this machine."""
    lines = []
    for r in results:
        if not r.system.startswith("riel") or (r.count, r.size) not in WORKLOADS:
            continue  # the targets are for the full workloads (not --quick or --smoke)
        cells = []
        for label, phase, server_cpu, target in (
            ("produce", r.produce, r.produce_cpu_s, TARGETS[r.size][0]),
            ("consume", r.consume, r.consume_cpu_s, TARGETS[r.size][1]),
        ):
            rate, top = phase.rate(), ceiling(phase, server_cpu)
            verdict = "met" if rate >= target else "not met"
            cells.append(f"{label} {rate:,.0f} of {target:,} msg/s {verdict} (ceiling {fmt_ceiling(top)})")
        lines.append(f"  {r.workload} {r.system}: " + "; ".join(cells))
    if not lines:
        return
    print(
        "\nIssue 2 targets (ceiling: cores / (client + server CPU per message) measured above, the"
        " rate if both\nwere busy all the time; a target above its ceiling cannot be met by this client"
        " on this machine):"
    )
    print("\n".join(lines))
    floors = ", ".join(
        f"{size} B: {size / sha256_rate:.2f} µs/msg" for size in sorted({r.size for r in results})
    )
    print(
        f"  SHA-256 on this machine: {sha256_rate:,.0f} MB/s, so Riel's hash chain alone costs the"
        f" broker at least {floors} on produce."
    )


def machine_environment(**settings: str) -> dict[str, str]:
    """Python, platform, CPUs and confluent-kafka/librdkafka versions, plus the run's ``settings``."""
    info = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        **settings,
    }
    with contextlib.suppress(Exception):
        import confluent_kafka

        info["confluent-kafka / librdkafka"] = (
            f"{confluent_kafka.version()} / {confluent_kafka.libversion()[0]}"
        )
    return info


def sigterm_to_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: broker and tmp dir go


def environment(flush: str, sha256_rate: float) -> dict[str, str]:
    info = machine_environment(**{"riel flush": flush, "sha-256 (hashlib)": f"{sha256_rate:,.0f} MB/s"})
    with contextlib.suppress(Exception):
        import redis

        info["redis-py"] = redis.__version__
        info["hiredis parser"] = "yes" if redis.utils.HIREDIS_AVAILABLE else "no (pip install hiredis)"
    return info


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10x fewer messages")
    parser.add_argument(
        "--smoke", action="store_true", help="100x fewer messages: checks that every phase runs"
    )
    parser.add_argument("--flush", default="always", help="Riel --flush policy (always, os, interval:N:MS)")
    parser.add_argument("--kafka", metavar="HOST:PORT", help="also bench this Kafka-compatible broker")
    parser.add_argument("--no-redis", action="store_true", help="skip Redis Streams")
    parser.add_argument(
        "--redis-client",
        choices=["redis-py", "raw", "both"],
        default="both",
        help="XADD through redis-py's pipeline, through pre-encoded RESP on a raw socket, or both (default)",
    )
    parser.add_argument("--no-riel", action="store_true", help="skip Riel (e.g. to bench only --kafka)")
    parser.add_argument(
        "--client",
        choices=["confluent", "kcat", "both"],
        default="both",
        help="Kafka client driving Riel/--kafka: confluent-kafka from Python, kcat (C), or both (default)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per phase (default 300)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="parent of the tmp data dirs (default: system tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the tmp data dirs and logs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    workloads = []
    for count, size in WORKLOADS:
        n = count // 100 if args.smoke else count // 10 if args.quick else count
        workloads.append((f"{n:,} x {size} B", n, size))

    redis_server = None if args.no_redis else shutil.which("redis-server")
    if not args.no_redis:
        if redis_server is None:
            print("redis-server not found on PATH; skipping Redis Streams (apt-get install redis-server)")
        else:
            try:
                import redis  # noqa: F401
            except ImportError:
                print("redis-py not installed; skipping Redis Streams (pip install redis)")
                redis_server = None

    workdir = Path(tempfile.mkdtemp(prefix="riel-bench-", dir=args.workdir))
    results: list[Result] = []
    references: list[str] = []
    sha256_rate = sha256_mb_per_s()
    env = environment(args.flush, sha256_rate)
    print("Riel throughput benchmark")
    for k, v in env.items():
        print(f"  {k}: {v}")
    print(f"  workdir: {workdir}")
    try:
        stages: list[tuple[str, Callable[[], list[Result]]]] = []
        clients = ["confluent", "kcat"] if args.client == "both" else [args.client]
        if not args.no_riel:

            def riel_stage() -> list[Result]:
                port = free_port()
                with running(
                    riel_cmd(workdir / "riel-data", port, args.flush), port, workdir / "riel.log"
                ) as proc:
                    bootstrap = f"127.0.0.1:{port}"
                    return [
                        bench_kafka(
                            f"riel (flush={args.flush})",
                            bootstrap,
                            name,
                            count,
                            size,
                            args.timeout,
                            client,
                            proc.pid,
                        )
                        for name, count, size in workloads
                        for client in clients
                    ]

            stages.append(("riel", riel_stage))
        if redis_server is not None:
            server_path = redis_server

            def redis_stage() -> list[Result]:
                port = free_port()
                (workdir / "redis-data").mkdir()
                with running(
                    redis_cmd(server_path, workdir / "redis-data", port), port, workdir / "redis.log"
                ) as proc:
                    return [
                        bench_redis(port, name, count, size, args.timeout, raw, proc.pid)
                        for name, count, size in workloads
                        for raw in modes
                    ]

            modes = {"redis-py": [False], "raw": [True], "both": [False, True]}[args.redis_client]
            stages.append(("redis-streams", redis_stage))
            if False in modes:
                references.append("redis-streams")
            if True in modes:
                references.append("redis-streams (raw RESP)")
        if args.kafka:
            kafka_bootstrap = args.kafka

            def kafka_stage() -> list[Result]:
                return [
                    bench_kafka(
                        f"kafka@{kafka_bootstrap}", kafka_bootstrap, name, count, size, args.timeout, client
                    )
                    for name, count, size in workloads
                    for client in clients
                ]

            stages.append(("kafka", kafka_stage))
            references.append(f"kafka@{kafka_bootstrap}")

        for name, stage in stages:
            print(f"\n-- {name}", flush=True)
            stage_results = stage()
            for r in stage_results:
                p, c = fmt_rate(r.produce, r.size), fmt_rate(r.consume, r.size)
                print(f"   {r.workload}: produce {p[0]} msg/s, consume {c[0]} msg/s", flush=True)
            results += stage_results
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    results.sort(key=lambda r: [w[0] for w in workloads].index(r.workload))
    print_table(results, references)
    print_targets(results, sha256_rate)
    if args.json:
        args.json.write_text(
            json.dumps({"environment": env, "results": [asdict(r) for r in results]}, indent=2)
        )
    return 1 if any(r.produce.error or r.consume.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
