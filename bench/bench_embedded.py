#!/usr/bin/env python3
"""Embedded Riel (``riel.open(path)``) against SQLite and Redis Streams: publish and consume, one run.

    python bench/bench_embedded.py                      # 1,000,000 x 100 B, Riel flush=always
    python bench/bench_embedded.py --quick              # 100,000 x 100 B
    python bench/bench_embedded.py --flush os --sqlite-sync FULL --json /tmp/embedded.json
    python bench/bench_embedded.py --count 2000 --no-redis        # smoke run

Every system writes to files in one fresh tmp dir on disk (``--workdir``), removed at the end (also on
Ctrl-C). Values are ``--chunk`` (10,000) distinct random ``--size``-byte ``bytes`` objects made before
any clock starts, reused for every chunk; consumers touch each value (``len``) and the totals are checked.

Riel: ``riel.open(dir, flush_policy=--flush)`` (default ``always``: the writer thread fsyncs before it
acknowledges); two one-partition topics (batched, single) created before the clock starts.
  publish batched  ``publish_many(topic, chunk)`` per chunk, then ``flush()``; the time includes the flush.
  publish single   ``publish(topic, value)`` per message, then ``flush()``; the time includes the flush.
  consume          ``for m in log.subscribe("batched")`` (no group) until N messages; also with a group
                   (auto-commit on), and ``log.replay(topic)`` to its end.
SQLite (stdlib sqlite3, file DB): ``journal_mode=WAL``, ``synchronous=--sqlite-sync`` (default NORMAL:
WAL commits are not fsync'ed, only checkpoints are; FULL fsyncs the WAL on every commit), table
``(id INTEGER PRIMARY KEY, value BLOB)``.
  publish batched  ``executemany(INSERT, rows)`` per chunk, ``commit()`` per chunk (the ``(value,)``
                   row tuples are built before the clock starts).
  publish single   ``execute(INSERT, (value,))`` per message, ``commit()`` every chunk (10,000) messages,
                   the nearest analogue of Riel acknowledging a batch of single publishes at once.
  consume          ``for (value,) in execute("SELECT value FROM t ORDER BY id")``.
Redis Streams: a private ``redis-server`` on a free loopback port (appendonly yes, appendfsync everysec,
no RDB), driven with redis-py (hiredis parser when installed); server helpers from bench_throughput.py.
  publish batched  XADD pipelined ``--redis-pipeline`` (1,000) per round trip (non-transactional); the
                   table's Riel/Redis ratio is against this row. Also, for reference, bench_throughput's
                   raw-RESP producer: 1,000 pre-encoded XADDs of one value per write on a plain socket
                   (the server's speed without redis-py's per-command packing in Python).
  publish single   one XADD per round trip (redis-py ``xadd``), on min(N, ``--redis-single-max``) messages
                   (default 100,000): the rate of that smaller run is reported.
  consume          XREAD COUNT 10,000 from 0-0 until N entries.

Durability differs: Riel ``always`` fsyncs every group commit, SQLite NORMAL fsyncs only at checkpoints,
Redis everysec once a second. ``--flush os`` / ``--sqlite-sync FULL`` line them up the other way.
Each phase is bounded by ``--timeout`` seconds. Targets (from the issue): batched publish >= 500,000 msg/s,
single publish >= 200,000 msg/s, consume >= 1,000,000 msg/s.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench_throughput import (
    REDIS_PIPELINE,
    cpu_seconds,
    free_port,
    redis_cmd,
    redis_consume,
    redis_produce_raw,
    running,
)

import riel

TARGETS = {  # case -> msgs/s, checked against the first Riel row of that case
    "publish batched": 500_000,
    "publish single": 200_000,
    "consume": 1_000_000,
}
CASES = list(TARGETS)
PROGRESS_EVERY = 10_000  # deadline checks in per-message loops


class PhaseTimeout(Exception):
    pass


@dataclass
class Row:
    case: str  # one of CASES
    system: str  # "riel", "sqlite", "redis"
    how: str
    count: int
    size: int
    seconds: float = 0.0
    cpu_seconds: float | None = None  # this process (client + embedded engine), user + system
    error: str | None = None
    note: str | None = None

    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 and not self.error else 0.0

    def mb_per_s(self) -> float:
        return self.rate() * self.size / 1e6


@dataclass
class Settings:
    count: int
    size: int
    chunk: int
    flush: str
    linger_ms: float | None
    batch_bytes: int | None
    sqlite_sync: str
    redis_pipeline: int
    redis_single_max: int
    timeout: float


def make_values(chunk: int, size: int) -> list[bytes]:
    blob = os.urandom(chunk * size)
    return [blob[i * size : (i + 1) * size] for i in range(chunk)]


def chunks(count: int, chunk: int) -> Iterator[int]:
    """Sizes of the chunks that make up ``count`` messages."""
    done = 0
    while done < count:
        n = min(chunk, count - done)
        yield n
        done += n


@contextlib.contextmanager
def timed(row: Row) -> Iterator[None]:
    """Wall time and this process's CPU time of the block into ``row``; errors into ``row.error``."""
    cpu = cpu_seconds(os.getpid())
    start = time.perf_counter()
    try:
        yield
    except Exception as exc:  # the row fails, the other phases still run
        row.error = f"{type(exc).__name__}: {exc}"
    finally:
        row.seconds = time.perf_counter() - start
        after = cpu_seconds(os.getpid())
        row.cpu_seconds = None if cpu is None or after is None else after - cpu


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.at:
            raise PhaseTimeout(what)

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())


# ------------------------------------------------------------------------------------------------ riel


def bench_riel(s: Settings, data_dir: Path, values: list[bytes]) -> list[Row]:
    options: dict[str, Any] = {"flush_policy": s.flush}
    if s.linger_ms is not None:
        options["linger_ms"] = s.linger_ms
    if s.batch_bytes is not None:
        options["batch_bytes"] = s.batch_bytes
    n, size = s.count, s.size
    rows: list[Row] = []
    log = riel.open(str(data_dir), **options)
    try:
        log.create_topic("batched", 1)
        log.create_topic("single", 1)

        row = Row("publish batched", "riel", f"publish_many x{s.chunk:,}, flush()", n, size)
        rows.append(row)
        last: Any = None
        with timed(row):
            deadline = Deadline(s.timeout)
            publish_many = log.publish_many
            for k in chunks(n, s.chunk):
                last = publish_many("batched", values if k == len(values) else values[:k])
                deadline.check("publish_many")
            log.flush(deadline.left())
        if not row.error and last is not None and last.result(0)[-1].offset != n - 1:
            row.error = f"last offset {last.result(0)[-1].offset}, expected {n - 1}"
        report(row)

        row = Row("publish single", "riel", "publish() each, flush()", n, size)
        rows.append(row)
        last = None
        with timed(row):
            deadline = Deadline(s.timeout)
            publish = log.publish
            for k in chunks(n, s.chunk):
                for value in values[:k]:
                    last = publish("single", value)
                deadline.check("publish")
            log.flush(deadline.left())
        if not row.error and last is not None and last.result(0).offset != n - 1:
            row.error = f"last offset {last.result(0).offset}, expected {n - 1}"
        report(row)

        if rows[0].error:
            return rows
        for how, group in (("subscribe(), no group", None), ("subscribe(group), auto-commit", "bench")):
            row = Row("consume", "riel", how, n, size)
            rows.append(row)
            with timed(row):
                consumer = log.subscribe("batched", group=group)
                watchdog = threading.Timer(s.timeout, consumer.close)  # ends the for loop below
                watchdog.start()
                got = nbytes = 0
                try:
                    for message in consumer:
                        nbytes += len(message.value)
                        got += 1
                        if got == n:
                            break
                finally:
                    watchdog.cancel()
                    consumer.close()
                check_consumed(got, nbytes, n, size)
            report(row)

        row = Row("consume", "riel", "replay() to the end", n, size)
        rows.append(row)
        with timed(row):
            deadline = Deadline(s.timeout)
            got = nbytes = 0
            for message in log.replay("batched"):
                nbytes += len(message.value)
                got += 1
                if not got % 65_536:
                    deadline.check(f"replayed {got} of {n}")
            check_consumed(got, nbytes, n, size)
        report(row)
    finally:
        log.close()
    return rows


def check_consumed(got: int, nbytes: int, count: int, size: int) -> None:
    if got != count or nbytes != count * size:
        raise PhaseTimeout(f"consumed {got} messages / {nbytes} bytes, expected {count} / {count * size}")


# ---------------------------------------------------------------------------------------------- sqlite


def bench_sqlite(s: Settings, path: Path, values: list[bytes]) -> list[Row]:
    n, size = s.count, s.size
    rows: list[Row] = []
    conn = sqlite3.connect(path)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"sqlite refused WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={s.sqlite_sync}")
        for table in ("batched", "single"):
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value BLOB NOT NULL)")
        conn.commit()
        params = [(v,) for v in values]
        sync = f"sync={s.sqlite_sync}"

        row = Row("publish batched", "sqlite", f"executemany x{s.chunk:,}, commit each [{sync}]", n, size)
        rows.append(row)
        with timed(row):
            deadline = Deadline(s.timeout)
            for k in chunks(n, s.chunk):
                conn.executemany("INSERT INTO batched (value) VALUES (?)", params[:k])
                conn.commit()
                deadline.check("executemany")
        report(row)

        row = Row("publish single", "sqlite", f"execute() each, commit every {s.chunk:,} [{sync}]", n, size)
        rows.append(row)
        with timed(row):
            deadline = Deadline(s.timeout)
            execute = conn.execute
            for k in chunks(n, s.chunk):
                for p in params[:k]:
                    execute("INSERT INTO single (value) VALUES (?)", p)
                conn.commit()
                deadline.check("execute")
        report(row)

        for table, r in (("batched", rows[0]), ("single", rows[1])):
            stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if not r.error and stored != n:
                r.error = f"table holds {stored} rows, expected {n}"
        if rows[0].error:
            return rows

        row = Row("consume", "sqlite", "SELECT value ORDER BY id", n, size)
        rows.append(row)
        with timed(row):
            deadline = Deadline(s.timeout)
            got = nbytes = 0
            for (value,) in conn.execute("SELECT value FROM batched ORDER BY id"):
                nbytes += len(value)
                got += 1
                if not got % 65_536:
                    deadline.check(f"read {got} of {n}")
            check_consumed(got, nbytes, n, size)
        report(row)
    finally:
        conn.close()
    return rows


# ----------------------------------------------------------------------------------------------- redis


def bench_redis(s: Settings, redis_server: str, workdir: Path, values: list[bytes]) -> list[Row]:
    import redis

    n, size = s.count, s.size
    rows: list[Row] = []
    port = free_port()
    (workdir / "redis-data").mkdir()
    cmd = redis_cmd(redis_server, workdir / "redis-data", port)
    with running(cmd, port, workdir / "redis.log"):
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=max(30.0, s.timeout))
        try:
            row = Row("publish batched", "redis", f"XADD pipelined x{s.redis_pipeline:,} (redis-py)", n, size)
            rows.append(row)
            stream = f"bench-{uuid.uuid4().hex[:8]}"
            with timed(row):
                deadline = Deadline(s.timeout)
                pipe = client.pipeline(transaction=False)
                for k in chunks(n, s.chunk):
                    for start in range(0, k, s.redis_pipeline):
                        for value in values[start : min(k, start + s.redis_pipeline)]:
                            pipe.xadd(stream, {b"v": value})
                        pipe.execute()
                    deadline.check("xadd pipeline")
            length = client.xlen(stream)
            if not row.error and length != n:
                row.error = f"stream holds {length} entries, expected {n}"
            report(row)

            # The same with the command bytes built once (bench_throughput's raw RESP producer): what
            # the server takes when redis-py's per-command packing in Python is out of the way.
            pipeline = REDIS_PIPELINE
            row = Row(
                "publish batched", "redis", f"XADD pipelined x{pipeline:,} (raw RESP, one value)", n, size
            )
            rows.append(row)
            raw_stream = f"bench-raw-{uuid.uuid4().hex[:8]}"
            with timed(row):
                phase = redis_produce_raw(port, raw_stream, n, size, s.timeout)
                if phase.error:
                    raise RuntimeError(phase.error)
            length = client.xlen(raw_stream)
            if not row.error and length != n:
                row.error = f"stream holds {length} entries, expected {n}"
            client.delete(raw_stream)
            report(row)

            single_n = min(n, s.redis_single_max)
            row = Row("publish single", "redis", "XADD, one round trip each (redis-py)", single_n, size)
            if single_n < n:
                row.note = f"run on {single_n:,} of {n:,} messages"
            rows.append(row)
            single = f"bench-single-{uuid.uuid4().hex[:8]}"
            with timed(row):
                deadline = Deadline(s.timeout)
                xadd = client.xadd
                for k in chunks(single_n, s.chunk):
                    for value in values[:k]:
                        xadd(single, {b"v": value})
                    deadline.check("xadd")
            length = client.xlen(single)
            if not row.error and length != single_n:
                row.error = f"stream holds {length} entries, expected {single_n}"
            client.delete(single)
            report(row)

            if not rows[0].error:
                row = Row("consume", "redis", "XREAD COUNT 10,000 from 0-0 (redis-py)", n, size)
                rows.append(row)
                with timed(row):
                    phase = redis_consume(client, stream, n, size, s.timeout)
                    if phase.error:
                        raise RuntimeError(phase.error)
                report(row)
            client.delete(stream)
        finally:
            client.close()
    return rows


# ---------------------------------------------------------------------------------------------- report


def report(row: Row) -> None:
    if row.error:
        print(f"   {row.case:<16} {row.system:<7} FAILED: {row.error}", flush=True)
    else:
        print(f"   {row.case:<16} {row.system:<7} {row.rate():>12,.0f} msg/s  ({row.how})", flush=True)


def ratio(riel_row: Row, rows: list[Row], system: str) -> float | None:
    ref = next((r for r in rows if r.case == riel_row.case and r.system == system), None)
    if ref is None or not ref.rate() or not riel_row.rate():
        return None
    return riel_row.rate() / ref.rate()


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(rows: list[Row]) -> None:
    header: tuple[str, ...] = ("case", "system", "how", "messages", "seconds", "CPU s", "msgs/s", "MB/s")
    header += ("Riel/SQLite", "Riel/Redis")
    lines: list[tuple[str, ...]] = []
    for r in sorted(rows, key=lambda r: (CASES.index(r.case), ["riel", "sqlite", "redis"].index(r.system))):
        is_riel = r.system == "riel"
        lines.append(
            (
                r.case,
                r.system,
                r.how,
                f"{r.count:,}",
                "FAILED" if r.error else f"{r.seconds:.2f}",
                "-" if r.cpu_seconds is None else f"{r.cpu_seconds:.2f}",
                "FAILED" if r.error else f"{r.rate():,.0f}",
                "" if r.error else f"{r.mb_per_s():,.1f}",
                fmt_ratio(ratio(r, rows, "sqlite")) if is_riel else "",
                fmt_ratio(ratio(r, rows, "redis")) if is_riel else "",
            )
        )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print()
    print(fmt.format(*header))
    print(fmt.format(*("-" * w for w in widths)))
    for line in lines:
        print(fmt.format(*line).rstrip())
    for r in rows:
        if r.note:
            print(f"  note: {r.case} {r.system}: {r.note}")
        if r.error:
            print(f"  FAILED: {r.case} {r.system} ({r.how}): {r.error}")

    print("\nRatios (Riel msgs/s / reference msgs/s; > 1 means Riel is faster):")
    for r in rows:
        if r.system != "riel":
            continue
        print(f"  {r.case}: riel {r.how}")
        for ref in rows:
            if ref.case == r.case and ref.system != "riel":
                value = r.rate() / ref.rate() if r.rate() and ref.rate() else None
                print(f"      / {ref.system} {ref.how}: {fmt_ratio(value)}")

    print("\nTargets (first Riel row of each case):")
    for case, target in TARGETS.items():
        first = next((r for r in rows if r.case == case and r.system == "riel"), None)
        if first is None:
            continue
        verdict = "FAILED" if first.error else ("met" if first.rate() >= target else "NOT met")
        print(f"  {case:<16} >= {target:>9,} msg/s: {first.rate():>12,.0f}  {verdict}")


def targets_json(rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case, target in TARGETS.items():
        first = next((r for r in rows if r.case == case and r.system == "riel"), None)
        if first is not None:
            out[case] = {"target": target, "rate": first.rate(), "met": first.rate() >= target}
    return out


def describe_function(module_name: str, attr: str) -> str:
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', attr)}"


def environment(s: Settings) -> dict[str, str]:
    info = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "riel": getattr(riel, "__version__", "?"),
        "riel flush policy": s.flush,
        "riel linger_ms / batch_bytes": f"{s.linger_ms or 'default'} / {s.batch_bytes or 'default'}",
    }
    try:
        fast_records = importlib.import_module("riel.records.fast_records")
        info["fast_records.SPEEDUPS"] = "on" if getattr(fast_records, "SPEEDUPS", False) else "off"
    except Exception as exc:
        info["fast_records.SPEEDUPS"] = f"n/a (riel.records.fast_records: {type(exc).__name__})"
    # What the embedded writer and reader actually call (fast_records only counts once they use it).
    info["embedded encode"] = describe_function("riel.client.embedded_writer", "encode_records")
    info["embedded decode"] = describe_function("riel.client.embedded_reader", "decode_records")
    info["sqlite"] = f"{sqlite3.sqlite_version}, journal_mode=WAL, synchronous={s.sqlite_sync}"
    with contextlib.suppress(Exception):
        import redis

        info["redis-py"] = redis.__version__
        info["hiredis parser"] = "yes" if redis.utils.HIREDIS_AVAILABLE else "no (pip install hiredis)"
    return info


# ------------------------------------------------------------------------------------------------ main


def sigterm_to_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: tmp dir and redis-server go


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, help="messages per case (default 1,000,000; 100,000 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="100,000 messages unless --count is given")
    parser.add_argument("--size", type=int, default=100, help="bytes per value (default 100)")
    parser.add_argument("--chunk", type=int, default=10_000, help="publish_many/executemany chunk (10,000)")
    parser.add_argument(
        "--flush", default="always", help="Riel flush policy: always (default), os, interval:N:MS"
    )
    parser.add_argument("--linger-ms", type=float, help="Riel linger_ms (default: Riel's)")
    parser.add_argument("--batch-bytes", type=int, help="Riel batch_bytes (default: Riel's)")
    parser.add_argument("--sqlite-sync", choices=["NORMAL", "FULL"], default="NORMAL", help="default NORMAL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--no-redis", action="store_true", help="skip Redis Streams")
    parser.add_argument("--redis-pipeline", type=int, default=1_000, help="XADDs per pipeline (1,000)")
    parser.add_argument(
        "--redis-single-max", type=int, default=100_000, help="cap on the one-round-trip-each XADD run"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per phase (120)")
    parser.add_argument("--workdir", type=Path, help="parent of the tmp dir (default: system tmp, on disk)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    count = args.count if args.count is not None else (100_000 if args.quick else 1_000_000)
    if count <= 0 or args.size <= 0 or args.chunk <= 0:
        parser.error("--count, --size and --chunk must be positive")
    from riel.config import FlushPolicy

    try:
        FlushPolicy.parse(args.flush)
    except ValueError as exc:
        parser.error(str(exc))
    s = Settings(
        count=count,
        size=args.size,
        chunk=args.chunk,
        flush=args.flush,
        linger_ms=args.linger_ms,
        batch_bytes=args.batch_bytes,
        sqlite_sync=args.sqlite_sync,
        redis_pipeline=args.redis_pipeline,
        redis_single_max=args.redis_single_max,
        timeout=args.timeout,
    )

    redis_server = None if args.no_redis else shutil.which("redis-server")
    if not args.no_redis:
        if redis_server is None:
            print("redis-server not found on PATH; skipping Redis Streams (apt-get install redis-server)")
        else:
            try:
                import redis  # noqa: F401
            except ImportError:
                print("redis-py not installed; skipping Redis Streams (pip install redis hiredis)")
                redis_server = None

    signal.signal(signal.SIGTERM, sigterm_to_exit)
    env = environment(s)
    print(f"Riel embedded benchmark: {count:,} x {s.size} B per case")
    for k, v in env.items():
        print(f"  {k}: {v}")
    workdir = Path(tempfile.mkdtemp(prefix="riel-bench-embedded-", dir=args.workdir))
    print(f"  workdir: {workdir}")
    rows: list[Row] = []
    try:
        values = make_values(min(s.chunk, count), s.size)
        stages: list[tuple[str, Callable[[], list[Row]]]] = [
            ("riel (embedded)", lambda: bench_riel(s, workdir / "riel", values))
        ]
        if not args.no_sqlite:
            stages.append(("sqlite", lambda: bench_sqlite(s, workdir / "bench.sqlite", values)))
        if redis_server is not None:
            server = redis_server
            stages.append(("redis streams", lambda: bench_redis(s, server, workdir, values)))
        for name, stage in stages:
            print(f"\n-- {name}", flush=True)
            rows += stage()
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print_table(rows)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": env,
                    "settings": asdict(s),
                    "results": [
                        {**asdict(r), "msgs_per_s": r.rate(), "mb_per_s": r.mb_per_s()} for r in rows
                    ],
                    "ratios": {
                        f"{r.case} / {r.how}": {
                            "riel_over_sqlite": ratio(r, rows, "sqlite"),
                            "riel_over_redis": ratio(r, rows, "redis"),
                        }
                        for r in rows
                        if r.system == "riel"
                    },
                    "targets": targets_json(rows),
                },
                indent=2,
            )
        )
        print(f"\nwrote {args.json}")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
