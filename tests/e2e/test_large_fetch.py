"""Fetches far larger than a socket buffer: sendfile must keep going under backpressure.

A fetch allowing 10 MB per partition makes the broker send multi-megabyte segment slices, which
cannot go out in one write; an early version hung such connections forever.
"""

from __future__ import annotations

import subprocess

from conftest import RielServer
from e2e.helpers import create_topic, unique_topic


def test_kcat_reads_a_large_partition_with_large_fetch_limits(riel: RielServer) -> None:
    topic = unique_topic("bigfetch")
    create_topic(riel.bootstrap, topic, 1)
    lines = b"".join(b"%07d" % i + b"x" * 93 + b"\n" for i in range(200_000))
    subprocess.run(
        [
            "kcat",
            "-P",
            "-b",
            riel.bootstrap,
            "-t",
            topic,
            "-X",
            "linger.ms=5",
            "-X",
            "batch.size=1000000",
            "-X",
            "enable.idempotence=true",
        ],
        input=lines,
        check=True,
        timeout=60,
    )
    out = subprocess.run(
        [
            "kcat",
            "-C",
            "-b",
            riel.bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%s\n",
            "-X",
            "fetch.max.bytes=52428800",
            "-X",
            "max.partition.fetch.bytes=10485760",
            "-X",
            "receive.message.max.bytes=60000000",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert out == lines
