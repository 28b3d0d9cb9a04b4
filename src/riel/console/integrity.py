"""Integrity of append-only topics (``riel.append.only=true``): their hash chains, checked on demand.

``verify_partition`` recomputes every chain from the ``.log`` bytes: read-only but proportional to the
partition's size, so it runs in a worker thread when a person asks (the topic page's button), never on
a page load of the overview. It reads only files (no storage object is touched from the thread); a batch
being appended at that very moment can show up as an unchained tail, as with ``riel verify --no-lock``.
The last result per topic is kept so pages can show it with its age.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from riel.storage.hash_chain import VerifyResult, verify_partition
from riel.storage.log_manager import LogManager

APPEND_ONLY = "riel.append.only"


@dataclass(frozen=True, slots=True)
class PartitionIntegrity:
    partition: int
    ok: bool
    batches: int
    size_bytes: int
    first_bad_offset: int | None
    reason: str | None
    head_offset: int
    head_hash: str
    notes: list[str]

    @property
    def status(self) -> str:
        return "OK" if self.ok else f"FAILED at offset {self.first_bad_offset}"

    def as_json(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "ok": self.ok,
            "status": self.status,
            "batches": self.batches,
            "size_bytes": self.size_bytes,
            "first_bad_offset": self.first_bad_offset,
            "reason": self.reason,
            "head_offset": self.head_offset,
            "head_hash": self.head_hash,
            "notes": self.notes,
        }


@dataclass(slots=True)
class TopicIntegrity:
    topic: str
    checked_at: float  # seconds since the epoch
    seconds: float  # how long the check took
    partitions: list[PartitionIntegrity] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.partitions)

    def as_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "ok": self.ok,
            "checked_at": self.checked_at,
            "seconds": round(self.seconds, 3),
            "partitions": [p.as_json() for p in self.partitions],
        }


def is_append_only(log_manager: LogManager, topic: str) -> bool:
    return log_manager.effective_config(topic).get(APPEND_ONLY) == "true"


def _summarise(partition: int, result: VerifyResult) -> PartitionIntegrity:
    return PartitionIntegrity(
        partition=partition,
        ok=result.ok,
        batches=result.batches,
        size_bytes=result.size_bytes,
        first_bad_offset=result.first_bad_offset,
        reason=result.reason,
        head_offset=result.head_offset,
        head_hash=result.head_hash.hex(),
        notes=list(result.notes),
    )


def _verify_all(directories: list[tuple[int, Path]]) -> list[PartitionIntegrity]:
    out = []
    for partition, directory in directories:
        try:
            result = verify_partition(directory)
        except (OSError, ValueError) as exc:  # the directory went away (topic deleted) or cannot be read
            result = VerifyResult().fail(-1, f"cannot read {directory}: {exc}")
        out.append(_summarise(partition, result))
    return out


class IntegrityChecker:
    def __init__(self, log_manager: LogManager) -> None:
        self._log_manager = log_manager
        self.last: dict[str, TopicIntegrity] = {}
        self._running: dict[str, asyncio.Task[TopicIntegrity]] = {}

    async def verify(self, topic: str, partitions: int) -> TopicIntegrity:
        """Verify every partition of ``topic``; concurrent requests for a topic share one run."""
        task = self._running.get(topic)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._verify(topic, partitions))
            self._running[topic] = task
            task.add_done_callback(lambda _: self._running.pop(topic, None))
        return await asyncio.shield(task)

    async def _verify(self, topic: str, partitions: int) -> TopicIntegrity:
        directories = [(i, self._log_manager.partition_dir(topic, i)) for i in range(partitions)]
        started = time.monotonic()
        checked_at = time.time()
        results = await asyncio.to_thread(_verify_all, directories)
        outcome = TopicIntegrity(topic, checked_at, time.monotonic() - started, results)
        self.last[topic] = outcome
        return outcome
