"""``riel verify`` as a user runs it: a subprocess on a data directory written by the embedded SDK or by
a ``riel serve`` that was stopped; a flipped byte gives exit code 1 and names its offset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import riel
from conftest import ServerFactory
from e2e.helpers import confluent_produce, create_topic, make_messages, unique_topic
from riel.records import read_header

VERIFY_TIMEOUT_S = 60


def run_verify(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riel", "verify", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=VERIFY_TIMEOUT_S,
        check=False,
    )


def write_with_sdk(data_dir: Path, topic: str = "orders", partitions: int = 2, rounds: int = 12) -> None:
    log = riel.open(str(data_dir))
    try:
        log.create_topic(topic, partitions)
        for i in range(rounds):  # one publish waited for at a time: one batch each
            for p in range(partitions):
                log.publish(topic, b"order-%d" % i, partition=p).result(10)
    finally:
        log.close()


def batch_starts(log_path: Path) -> list[tuple[int, int, int]]:
    """(base offset, position, size) of each batch of a segment file."""
    data = log_path.read_bytes()
    out, position = [], 0
    while position < len(data):
        header = read_header(data, position)
        out.append((header.base_offset, position, header.size))
        position += header.size
    return out


def flip_byte_in_batch(partition_dir: Path, index: int) -> int:
    """Flip a byte near the end of the ``index``-th batch of the first segment; returns its offset."""
    log_path = sorted(partition_dir.glob("*.log"))[0]
    offset, position, size = batch_starts(log_path)[index]
    data = bytearray(log_path.read_bytes())
    data[position + size - 2] ^= 0x01
    log_path.write_bytes(bytes(data))
    return offset


def test_verify_sdk_data_dir_export_heads_and_detect_a_flipped_byte(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_with_sdk(data_dir)

    ok = run_verify(data_dir, "--export-heads", str(tmp_path / "heads.json"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK    orders/0  12 batches" in ok.stdout and "OK    orders/1  12 batches" in ok.stdout
    heads = json.loads((tmp_path / "heads.json").read_text())
    assert heads["orders/0"]["offset"] == 11 and len(heads["orders/0"]["hash"]) == 64

    # More data later: the pinned heads still match.
    write_more = riel.open(str(data_dir))
    write_more.publish("orders", b"later", partition=0).result(10)
    write_more.close()
    later = run_verify(data_dir, "--against", str(tmp_path / "heads.json"))
    assert later.returncode == 0, later.stdout + later.stderr
    assert "matches exported head 11" in later.stdout

    bad_offset = flip_byte_in_batch(data_dir / "topics" / "orders-1", 5)
    failed = run_verify(data_dir)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"FAIL  orders/1  first bad offset {bad_offset}:" in failed.stdout
    assert "OK    orders/0" in failed.stdout

    only_good = run_verify(data_dir, "orders/0")
    assert only_good.returncode == 0 and "orders/1" not in only_good.stdout
    only_bad = run_verify(data_dir, "orders/1", "--against", str(tmp_path / "heads.json"))
    assert only_bad.returncode == 1
    assert f"first bad offset {bad_offset}" in only_bad.stdout


def test_verify_refuses_a_data_dir_in_use_unless_told_and_reports_usage_errors(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_with_sdk(data_dir, partitions=1, rounds=3)
    log = riel.open(str(data_dir))
    try:
        busy = run_verify(data_dir)
        assert busy.returncode == 2
        assert "in use" in busy.stderr and "--no-lock" in busy.stderr
        anyway = run_verify(data_dir, "--no-lock")
        assert anyway.returncode == 0, anyway.stdout + anyway.stderr
    finally:
        log.close()
    assert run_verify(data_dir, "nosuchtopic").returncode == 2
    assert run_verify(data_dir, "orders/x").returncode == 2
    assert run_verify(tmp_path / "missing").returncode == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert run_verify(data_dir, "--against", str(tmp_path / "bad.json")).returncode == 2


@pytest.mark.timeout(120)
def test_verify_a_stopped_server_data_dir(riel_factory: ServerFactory) -> None:
    server = riel_factory(num_partitions=1)
    topic = unique_topic("verify")
    create_topic(server.bootstrap, topic, 1)
    for i in range(4):  # separate produce calls: several batches
        confluent_produce(server.bootstrap, topic, make_messages(5, tag=f"r{i}"), partition=0)
    busy = run_verify(server.data_dir)
    assert busy.returncode == 2  # the server holds the lock
    server.stop()

    ok = run_verify(server.data_dir, topic)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"OK    {topic}/0" in ok.stdout

    bad_offset = flip_byte_in_batch(server.data_dir / "topics" / f"{topic}-0", 1)
    failed = run_verify(server.data_dir, topic)
    assert failed.returncode == 1
    assert f"FAIL  {topic}/0  first bad offset {bad_offset}:" in failed.stdout
