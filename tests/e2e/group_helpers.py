"""Consumer-group test helpers: group members in subprocesses (see group_worker.py), read back through
their event files, and bounded waits on what they report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("group_worker.py")
SESSION_MS = 6_000  # the broker's minimum: failures are noticed as fast as Kafka allows
HEARTBEAT_MS = 1_000


class Worker:
    """One consumer process. ``events()`` re-reads its event file (cheap: tests are small)."""

    def __init__(
        self,
        client: str,
        bootstrap: str,
        group: str,
        topic: str,
        out: Path,
        *,
        instance_id: str | None = None,
        assignor: str | None = None,
        session_ms: int = SESSION_MS,
        heartbeat_ms: int = HEARTBEAT_MS,
        max_seconds: float = 150.0,
        name: str = "",
    ) -> None:
        self.client = client
        self.name = name or client
        self.out = out
        cmd = [
            sys.executable,
            str(WORKER),
            "--client",
            client,
            "--bootstrap",
            bootstrap,
            "--group",
            group,
            "--topic",
            topic,
            "--out",
            str(out),
            "--session-ms",
            str(session_ms),
            "--heartbeat-ms",
            str(heartbeat_ms),
            "--max-seconds",
            str(max_seconds),
            "--client-id",
            f"riel-{self.name}",
        ]
        if instance_id:
            cmd += ["--instance-id", instance_id]
        if assignor:
            cmd += ["--assignor", assignor]
        self.stderr_path = out.with_suffix(".stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.out.read_text().splitlines()
        except FileNotFoundError:
            return []
        parsed = []
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            if kind is None or event["event"] == kind:
                parsed.append(event)
        return parsed

    def assignment(self) -> list[int] | None:
        found = self.events("assignment")
        return found[-1]["partitions"] if found else None

    def records(self) -> list[tuple[int, int, str]]:
        return [(p, o, v) for e in self.events("records") for p, o, v in e["records"]]

    def committed(self) -> dict[int, int]:
        """Per partition, the last offset this worker committed (exclusive: the next to read)."""
        out: dict[int, int] = {}
        for e in self.events("committed"):
            out.update({int(p): o for p, o in e["offsets"].items()})
        return out

    def callbacks(self) -> list[tuple[str, list[int]]]:
        return [(e["kind"], e["partitions"]) for e in self.events("callback")]

    def terminate(self, timeout: float = 30.0) -> None:
        """Graceful: the worker commits, closes (LeaveGroup) and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the member just stops heartbeating."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        return f"<{self.name} assignment={self.assignment()} records={len(self.records())}>"


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: Callable[[], str] | str,
    workers: Iterable[Worker] = (),
) -> float:
    """Poll ``predicate`` until true; returns the seconds it took. Fails with ``what`` and the workers'
    stderr tails on timeout, or at once if a worker died."""
    start = time.monotonic()
    workers = list(workers)
    while not predicate():
        for w in workers:
            if w.proc.poll() is not None and w.proc.returncode not in (0, -signal.SIGKILL):
                raise AssertionError(f"{w.name} exited with {w.proc.returncode}:\n{w.stderr()}")
        if time.monotonic() - start > timeout:
            detail = what() if callable(what) else what
            tails = "\n".join(f"--- {w.name}: {w!r}\n{w.stderr()}" for w in workers)
            raise AssertionError(f"timed out after {timeout}s waiting for {detail}\n{tails}")
        time.sleep(0.05)
    return time.monotonic() - start


def partitions_covered_once(workers: Iterable[Worker], partitions: int) -> bool:
    """Every partition is owned by exactly one of the workers, and each worker owns at least one."""
    assignments = [w.assignment() for w in workers]
    if any(not a for a in assignments):
        return False
    owned = Counter(p for a in assignments if a for p in a)
    return sorted(owned) == list(range(partitions)) and set(owned.values()) == {1}


def stop_all(workers: Iterable[Worker]) -> None:
    for w in workers:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(10)


def duplicates(records: Iterable[tuple[int, int, str]]) -> list[tuple[int, int]]:
    counts = Counter((p, o) for p, o, _ in records)
    return sorted(k for k, n in counts.items() if n > 1)
