"""Log compaction (cleanup.policy=compact) under a real ``riel serve`` and real clients.

The broker's cleaner runs every 200 ms here (``--log-cleaner-backoff-ms``); only sealed segments are
cleaned, so every topic uses a small ``segment.bytes``. The expected log after a clean is computed from
the producer's delivery reports and the active segment's base offset (read from the data dir once
producing is over): in the sealed part, exactly the latest record of each key (tombstones too, unless
older than ``delete.retention.ms``), at the offset it was given; the active segment as it was written.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import RielServer
from e2e.helpers import (
    Rec,
    confluent_consume,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    fetch_v4,
    iter_batch_headers,
    kp_consume,
    newest_segment,
    partition_dir,
    unique_topic,
)

CLEANER_BACKOFF_MS = 200
COMPACTION_DEADLINE_S = 30.0
VERIFY_TIMEOUT_S = 60
SEGMENT_BYTES = 2048
KEYS = 20
HOUR_MS = 3_600_000

# (key, value, offset) of one record in the log; value None is a tombstone.
Entry = tuple[bytes, bytes | None, int]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RielServer]:
    base = tmp_path_factory.mktemp("riel-compaction")
    riel = RielServer(
        base / "data",
        base / "riel.log",
        num_partitions=1,
        extra_args=("--log-cleaner-backoff-ms", str(CLEANER_BACKOFF_MS)),
    )
    riel.start()
    try:
        yield riel
    finally:
        riel.close()


def compacted_configs(**overrides: str) -> dict[str, str]:
    return {
        "cleanup.policy": "compact",
        "segment.bytes": str(SEGMENT_BYTES),
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": str(HOUR_MS),
        **overrides,
    }


def key(i: int) -> bytes:
    return f"key-{i:02d}".encode()


def value(round_: int, i: int) -> bytes:
    return f"round-{round_}-key-{i:02d}-".encode().ljust(60, b".")


@dataclass
class Written:
    entries: list[Entry]  # every record produced, in offset order

    def add(self, messages: Sequence[Rec], placed: Sequence[tuple[int, int]]) -> None:
        for message, (partition, offset) in zip(messages, placed, strict=True):
            assert partition == 0 and message.key is not None
            self.entries.append((message.key, message.value, offset))
        self.entries.sort(key=lambda entry: entry[2])

    @property
    def end(self) -> int:
        return self.entries[-1][2] + 1


def produce(server: RielServer, topic: str, written: Written, messages: list[Rec], **conf: str) -> None:
    placed = confluent_produce(server.bootstrap, topic, messages, partition=0, conf=dict(conf))
    written.add(messages, placed)


def rounds(
    server: RielServer, topic: str, written: Written, round_numbers: range, keys: range, **conf: str
) -> None:
    """One produce call (one or a few batches) per round, each updating every key of ``keys``."""
    for r in round_numbers:
        produce(server, topic, written, [Rec(key(i), value(r, i)) for i in keys], **conf)


def active_base(server: RielServer, topic: str) -> int:
    return int(newest_segment(partition_dir(server.data_dir, topic, 0)).stem)


def expected_after_clean(entries: Sequence[Entry], active: int, delete_horizon_passed: bool) -> list[Entry]:
    """Below ``active``: the latest record per key, tombstones dropped if ``delete_horizon_passed``;
    from ``active`` on: everything."""
    latest: dict[bytes, Entry] = {}
    for entry in entries:
        if entry[2] < active:
            latest[entry[0]] = entry
    sealed = [e for e in latest.values() if not (delete_horizon_passed and e[1] is None)]
    return sorted(sealed, key=lambda e: e[2]) + [e for e in entries if e[2] >= active]


def read_back(server: RielServer, topic: str, end: int) -> list[Entry]:
    """Everything from the beginning to ``end`` with a confluent-kafka consumer (check.crcs=true)."""
    records = confluent_consume(server.bootstrap, topic, {0: 0}, {0: end}, timeout=30)
    out = []
    for r in records:
        assert r.key is not None, f"keyless record at offset {r.offset}"
        out.append((r.key, r.value, r.offset))
    return out


def await_compaction(server: RielServer, topic: str, expected: list[Entry], end: int) -> list[Entry]:
    """Poll with a consumer until the log reads back as ``expected`` (returns it) or the deadline."""
    deadline = time.monotonic() + COMPACTION_DEADLINE_S
    got = read_back(server, topic, end)
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.3)
        got = read_back(server, topic, end)
    if got != expected:
        want_offsets = [e[2] for e in expected]
        got_offsets = [e[2] for e in got]
        raise AssertionError(
            f"{topic}: not compacted as expected within {COMPACTION_DEADLINE_S}s: read {len(got)} records, "
            f"expected {len(expected)}; offsets read {got_offsets[:40]}..., expected {want_offsets[:40]}...; "
            f"unexpected {sorted(set(got) - set(expected))[:5]}, "
            f"missing {sorted(set(expected) - set(got))[:5]}"
        )
    return got


def assert_log_shape(got: Sequence[Entry], active: int) -> None:
    offsets = [e[2] for e in got]
    assert offsets == sorted(set(offsets)), "offsets not strictly increasing"
    sealed_keys = [e[0] for e in got if e[2] < active]
    assert len(sealed_keys) == len(set(sealed_keys)), "a key appears twice in the cleaned segments"


def run_verify(data_dir: Path, topic: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riel", "verify", "--no-lock", "--data-dir", str(data_dir), topic],
        capture_output=True,
        text=True,
        timeout=VERIFY_TIMEOUT_S,
        check=False,
    )


def assert_verifies(server: RielServer, topic: str) -> None:
    done = run_verify(server.data_dir, topic)
    assert done.returncode == 0, f"riel verify exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert f"OK    {topic}/0" in done.stdout, done.stdout


def compaction_logged(server: RielServer, topic: str) -> bool:
    return any("compacted" in line and f"{topic}-0" in line for line in server.log_text().splitlines())


# --------------------------------------------------------------------------------------------- tests


def test_compaction_keeps_the_latest_record_per_key_at_its_offset(server: RielServer) -> None:
    topic = unique_topic("compact")
    create_topic(server.bootstrap, topic, 1, compacted_configs())
    written = Written([])
    rounds(server, topic, written, range(5), range(KEYS))  # 100 records, each key 5 times
    rounds(server, topic, written, range(5, 7), range(KEYS // 2))  # keys 0-9 twice more: partial batches
    tombstoned = [key(i) for i in (3, 5, 8)]  # not updated after this
    produce(server, topic, written, [Rec(k, None) for k in tombstoned])
    rounds(server, topic, written, range(7, 10), range(KEYS // 2, KEYS))  # enough to seal the tombstones
    produced = len(written.entries)

    active = active_base(server, topic)
    tombstone_offsets = [offset for k, v, offset in written.entries if v is None]
    assert max(tombstone_offsets) < active, f"tombstones not sealed yet (active segment from {active})"
    lo, hi = confluent_watermarks(server.bootstrap, topic, 0)
    assert (lo, hi) == (0, written.end)

    expected = expected_after_clean(written.entries, active, delete_horizon_passed=False)
    assert len(expected) < produced // 2, "the test data should leave most records superseded"
    got = await_compaction(server, topic, expected, written.end)
    assert compaction_logged(server, topic), server.log_tail()

    assert_log_shape(got, active)
    by_key = {k: (v, offset) for k, v, offset in got if offset < active}
    for k in tombstoned:  # a delete.retention.ms of an hour: the tombstones are still there
        assert by_key[k][0] is None, f"tombstone of {k!r} missing: {by_key.get(k)}"
    assert confluent_watermarks(server.bootstrap, topic, 0) == (0, written.end)  # log start/end unchanged

    # kafka-python reads the same log, offset gaps and all.
    kp = kp_consume(server.bootstrap, topic, {0: None}, {0: written.end}, timeout=30)
    assert [(r.key, r.value, r.offset) for r in kp] == got

    assert_verifies(server, topic)


def test_tombstones_older_than_delete_retention_are_removed(server: RielServer) -> None:
    topic = unique_topic("compact-tombstones")
    create_topic(server.bootstrap, topic, 1, compacted_configs(**{"delete.retention.ms": "1000"}))
    written = Written([])
    rounds(server, topic, written, range(4), range(KEYS))
    deleted = [key(i) for i in (1, 5, 9, 14)]
    produce(server, topic, written, [Rec(k, None) for k in deleted])
    time.sleep(1.5)  # the tombstones' timestamps are now older than delete.retention.ms
    # Seal the tombstones (and clean again: this data makes the log dirty) with other keys.
    rounds(server, topic, written, range(4, 8), range(KEYS, KEYS + 10))

    active = active_base(server, topic)
    assert max(offset for _, v, offset in written.entries if v is None) < active
    expected = expected_after_clean(written.entries, active, delete_horizon_passed=True)
    got = await_compaction(server, topic, expected, written.end)
    assert_log_shape(got, active)
    present = {k for k, _, _ in got}
    assert not present & set(deleted), f"deleted keys still present: {sorted(present & set(deleted))}"
    assert all(v is not None for _, v, _ in got)
    assert {key(i) for i in range(KEYS + 10)} - set(deleted) <= present

    kp = kp_consume(server.bootstrap, topic, {0: None}, {0: written.end}, timeout=30)
    assert [(r.key, r.value, r.offset) for r in kp] == got
    assert_verifies(server, topic)


BATCH_ATTRIBUTES = struct.Struct(">hi")  # attributes, last offset delta (at byte 21 of a v2 batch)
CODECS = {"lz4": 3, "zstd": 4, "gzip": 1, "snappy": 2}


def raw_batches(server: RielServer, topic: str, end: int) -> list[tuple[int, int, int, int]]:
    """(base offset, records count, codec, last offset delta) of every batch, by raw Fetch v4."""
    import socket

    out: list[tuple[int, int, int, int]] = []
    offset = 0
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        while offset < end:
            err, _hw, records = fetch_v4(
                sock, topic, 0, offset, partition_max_bytes=1 << 20, max_bytes=1 << 20
            )
            assert err == 0, f"fetch error {err} at offset {offset}"
            position = 0
            got_any = False
            for base, count, size in iter_batch_headers(records):
                attributes, last_delta = BATCH_ATTRIBUTES.unpack_from(records, position + 21)
                if base + last_delta >= offset:
                    out.append((base, count, attributes & 0x7, last_delta))
                    offset = base + last_delta + 1
                    got_any = True
                position += size
            assert got_any, f"fetch at {offset} returned no whole batch"
    return out


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_compressed_batches_are_rewritten_with_their_codec(server: RielServer, codec: str) -> None:
    topic = unique_topic(f"compact-{codec}")
    create_topic(server.bootstrap, topic, 1, compacted_configs())
    written = Written([])
    conf = {"compression.type": codec, "linger.ms": "20"}
    rounds(server, topic, written, range(3), range(KEYS), **conf)
    rounds(server, topic, written, range(3, 5), range(0, KEYS, 2), **conf)  # half of each batch goes
    rounds(server, topic, written, range(5, 20), range(KEYS, KEYS + 20), **conf)  # roll

    active = active_base(server, topic)
    expected = expected_after_clean(written.entries, active, delete_horizon_passed=False)
    got = await_compaction(server, topic, expected, written.end)
    assert_log_shape(got, active)
    latest = {k: v for k, v, _ in written.entries}
    assert {k: v for k, v, _ in got} == latest  # every key reads back with its latest value

    batches = raw_batches(server, topic, written.end)
    assert all(c == CODECS[codec] for _, _, c, _ in batches), batches
    partial = [b for b in batches if b[0] < active and b[1] < b[3] + 1]
    assert partial, f"no batch lost only some of its records: {batches}"
    kp = kp_consume(server.bootstrap, topic, {0: None}, {0: written.end}, timeout=30)
    assert [(r.key, r.value, r.offset) for r in kp] == got
    assert_verifies(server, topic)
