#!/usr/bin/env python3
"""Microbenchmark of the records-section codecs: µs per record to encode and to decode.

    python bench/bench_record_codec.py                       # 1000 records of (None, 100 B, no headers)
    python bench/bench_record_codec.py --value-size 1024 --headers 2

Compares the C fast path (``riel.records._speedups``), the pure-Python fallback
(``fast_records.py_*``) and the reference codec (``record_codec``). Decoding builds
``riel.client.api.Message`` tuples (the reference builds its ``Record`` dataclasses); freeing the
decoded records and garbage collection are part of the measured time, as they are for a consumer.
Best of ``--repeat`` runs; on a busy machine, rerun.
"""

from __future__ import annotations

import argparse
import importlib
import timeit
from collections.abc import Callable

from riel.client.api import Message
from riel.records import fast_records, record_codec
from riel.records.fast_records import Item


def best_us_per_record(fn: Callable[[], object], records: int, budget_s: float, repeat: int) -> float:
    """Best of ``repeat`` runs, with the garbage collector on (timeit turns it off) as in real use."""
    once = timeit.timeit(fn, "gc.enable()", number=1)
    number = max(1, int(budget_s / repeat / max(once, 1e-9)))
    return min(timeit.repeat(fn, "gc.enable()", number=number, repeat=repeat)) / number / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--records", type=int, default=1000, help="records per section")
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--key-size", type=int, default=-1, help="-1: null keys")
    parser.add_argument("--headers", type=int, default=0, help="headers per record (0: None)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    key = None if args.key_size < 0 else b"k" * args.key_size
    value = bytes(range(256)) * (args.value_size // 256) + bytes(args.value_size % 256)
    headers = [(f"h{i}", b"v") for i in range(args.headers)] or None
    base = 1_700_000_000_000
    items: list[Item] = [(key, value, headers, base) for _ in range(args.records)]
    section, _ = fast_records.py_encode_records(items, base)
    n = args.records

    impls: list[tuple[str, Callable[[], object], Callable[[], object]]] = []
    try:
        c = importlib.import_module("riel.records._speedups")
    except ImportError:
        print("riel.records._speedups is not built: C path skipped")
    else:
        impls.append(
            (
                "C (_speedups)",
                lambda: c.encode_records(items, base),
                lambda: c.decode_records(section, n, 0, base, None, "t", 0, 0, Message),
            )
        )
    impls.append(
        (
            "Python fallback",
            lambda: fast_records.py_encode_records(items, base),
            lambda: fast_records.py_decode_records(section, n, 0, base, None, "t", 0, 0, Message),
        )
    )
    records = [record_codec.Record(0, base, key, value, list(headers or [])) for _ in range(n)]
    impls.append(
        (
            "reference (record_codec)",
            lambda: record_codec.encode_records(records, base),
            lambda: record_codec.decode_records(section, n, 0, base, None),
        )
    )

    print(
        f"{n} records: key {args.key_size} B, value {args.value_size} B, {args.headers} headers; "
        f"section {len(section)} B; fast_records.SPEEDUPS={fast_records.SPEEDUPS}"
    )
    print(f"{'path':<26} {'encode µs/rec':>14} {'decode µs/rec':>14}")
    for name, encode, decode in impls:
        enc = best_us_per_record(encode, n, args.budget, args.repeat)
        dec = best_us_per_record(decode, n, args.budget, args.repeat)
        print(f"{name:<26} {enc:>14.3f} {dec:>14.3f}")


if __name__ == "__main__":
    main()
