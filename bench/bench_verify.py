#!/usr/bin/env python3
"""Speed of ``verify_partition`` (MB/s) against raw ``hashlib.sha256`` over the same bytes, and the
cost the hash chain adds to an append.

    python bench/bench_verify.py                       # 256 MB of 16 KiB batches
    python bench/bench_verify.py --mb 128 --batch-bytes 1024

Writes a partition log in a temporary directory (page cache warm: it measures CPU, not the disk),
then times, best of ``--repeat``:
  - raw:     ``hashlib.sha256`` over each segment file in one call (the ceiling);
  - chained: ``sha256(prev || batch)`` per batch over the mapped files (what a chain costs at best);
  - verify:  ``verify_partition`` (the chained hashing plus reading and comparing the chain files).
Append cost: µs per ``PartitionLog.append`` of one batch with chaining, and the part of it spent in
the chain (``ChainWriter.append`` timed alone on the same batches).
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import tempfile
import time
from pathlib import Path

from riel.config import FlushPolicy
from riel.records import Record, encode_batch, read_header
from riel.records.batch_header import validate_batches
from riel.storage import LogConfig, PartitionLog
from riel.storage.hash_chain import ZERO_HASH, ChainWriter, verify_partition

NOW_MS = 1_700_000_000_000


def make_batch(batch_bytes: int) -> bytearray:
    value_size = max(1, batch_bytes - 100)
    return bytearray(encode_batch([Record(0, NOW_MS, None, b"x" * value_size)]))


def best(fn: object, repeat: int) -> float:
    assert callable(fn)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--mb", type=int, default=256, help="log size to write and verify")
    parser.add_argument("--batch-bytes", type=int, default=16384)
    parser.add_argument("--segment-mb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "bench-0"
        config = LogConfig.from_configs({"segment.bytes": str(args.segment_mb << 20)})
        plog = PartitionLog.open(directory, config, FlushPolicy.parse("os"), now_ms=NOW_MS)
        template = make_batch(args.batch_bytes)
        count = (args.mb << 20) // len(template)
        start = time.perf_counter()
        for _ in range(count):
            plog.append(bytearray(template), NOW_MS)
        append_s = time.perf_counter() - start
        plog.close()

        logs = sorted(directory.glob("*.log"))
        total = sum(path.stat().st_size for path in logs)

        def raw() -> None:
            for path in logs:
                with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    hashlib.sha256(m).digest()

        def chained() -> None:
            digest = ZERO_HASH
            for path in logs:
                with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    view = memoryview(m)
                    position = 0
                    while position < len(m):
                        size = read_header(view, position).size
                        h = hashlib.sha256(digest)
                        h.update(view[position : position + size])
                        digest = h.digest()
                        position += size
                    view.release()

        def verify() -> None:
            result = verify_partition(directory)
            assert result.ok, result.reason

        mb = total / 1e6
        print(f"log: {mb:.0f} MB in {count} batches of {len(template)} B, {len(logs)} segment(s)")
        for name, fn in (("raw sha256", raw), ("chained sha256", chained), ("verify_partition", verify)):
            seconds = best(fn, args.repeat)
            print(f"{name:18s} {mb / seconds:8.0f} MB/s")

        # The chain's share of an append: ChainWriter.append alone on the same batches.
        headers = validate_batches(template, 1 << 30)
        writer = ChainWriter.create(Path(tmp) / "alone.chain", ZERO_HASH)
        n = min(count, 20_000)
        start = time.perf_counter()
        for i in range(n):
            headers[0].base_offset = i
            writer.append(template, headers, i * len(template))
        chain_s = time.perf_counter() - start
        writer.close()
        print(
            f"append (flush=os): {append_s / count * 1e6:.1f} µs/batch in total, "
            f"of which the chain ~{chain_s / n * 1e6:.1f} µs"
        )


if __name__ == "__main__":
    main()
