"""Group chat: independent groups each receive every message. Three groups (one per Python client) are
subscribed before anything is produced; a fourth group (``kcat -G``, librdkafka's balanced consumer)
starts only after everything was produced and, with auto.offset.reset=earliest, still gets it all."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import RielServer
from e2e.group_helpers import Worker, stop_all, wait_until
from e2e.helpers import confluent_produce, create_topic, make_messages, unique_topic

MESSAGES = 1_000
PARTITIONS = 3


def test_every_group_receives_every_message(riel: RielServer, tmp_path: Path) -> None:
    topic = unique_topic("chat")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    workers = [
        Worker(client, riel.bootstrap, unique_topic(f"chat-{client}"), topic, tmp_path / f"{client}.jsonl")
        for client in ("confluent", "kafka-python", "aiokafka")
    ]
    try:
        wait_until(
            lambda: all(w.assignment() == list(range(PARTITIONS)) for w in workers),
            45,
            lambda: f"each group's only member to own every partition: {workers}",
            workers,
        )
        messages = make_messages(MESSAGES, tag="chat")
        confluent_produce(riel.bootstrap, topic, messages)
        wanted = sorted(m.value.decode() for m in messages if m.value is not None)
        for w in workers:
            wait_until(
                lambda w=w: len(w.records()) >= MESSAGES,
                60,
                lambda w=w: f"{w.name} to receive {MESSAGES}, got {len(w.records())}",
                workers,
            )
        for w in workers:
            assert sorted(v for _, _, v in w.records()) == wanted, f"{w.name} got other messages"
    finally:
        stop_all(workers)

    late_group = unique_topic("chat-kcat")
    got = kcat_group_consume(riel.bootstrap, late_group, topic, MESSAGES)
    assert sorted(got) == wanted


def kcat_group_consume(
    bootstrap: str, group: str, topic: str, expected: int, timeout: float = 60.0
) -> list[str]:
    """Run ``kcat -G`` until it has printed ``expected`` values; return them."""
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not installed (.ci/run installs it)")
    # -u: unbuffered, else stdio holds the last lines back while kcat waits for more.
    cmd = [
        kcat,
        "-b",
        bootstrap,
        "-G",
        group,
        "-X",
        "auto.offset.reset=earliest",
        "-q",
        "-u",
        "-f",
        "%s\n",
        topic,
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        import selectors
        import time

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buffer = b""
        while len(lines) < expected:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"kcat -G printed {len(lines)} of {expected} messages in {timeout}s"
            if not sel.select(min(remaining, 1.0)):
                assert proc.poll() is None, f"kcat exited with {proc.returncode}: {proc.stderr.read()!r}"  # type: ignore[union-attr]
                continue
            chunk = proc.stdout.read1(65536)
            if not chunk:
                assert proc.poll() is not None
                raise AssertionError(f"kcat exited with {proc.returncode} after {len(lines)} messages")
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            lines.extend(x.decode() for x in done)
        return lines
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
