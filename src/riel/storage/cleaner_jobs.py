"""Scheduling compaction: which partition to clean next, and running the clean off the owner thread.

Like Kafka's cleaner thread, one partition is cleaned at a time: the dirtiest compacted partition
whose dirty ratio has reached its topic's ``min.cleanable.dirty.ratio``, checked every ``backoff_ms``
(Kafka's log.cleaner.backoff.ms). The owner thread (the broker's event loop, or the SDK's writer)
only plans and swaps; the cleaning itself runs in a worker process (``clean_worker.py``) which the
owner polls on each ``tick``, so appends never wait for it. ``inline=True`` cleans on the calling
thread instead (tests, or platforms where starting a process is not wanted).
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from riel.errors import StorageError
from riel.storage.atomic_file import TMP_SUFFIX
from riel.storage.log_cleaner import CleanedGroup, CleanPlan, discard_cleaned, run_clean
from riel.storage.partition_log import PartitionLog

log = logging.getLogger(__name__)

CLEANER_BACKOFF_MS: Final = 15_000  # Kafka's log.cleaner.backoff.ms
_PLAN_FILE: Final = "cleaner-plan.json" + TMP_SUFFIX  # .tmp: removed by the next open if left over
_RESULT_FILE: Final = "cleaner-result.json" + TMP_SUFFIX


@dataclass
class _Job:
    plog: PartitionLog
    plan: CleanPlan
    process: subprocess.Popen[bytes]
    result_path: Path


class LogCleaner:
    """Compacts the partitions handed to ``tick``, one at a time. Not thread-safe: call ``tick``,
    ``cancel`` and ``close`` from the thread that owns the logs."""

    def __init__(self, *, backoff_ms: int = CLEANER_BACKOFF_MS, inline: bool = False) -> None:
        self.backoff_ms = backoff_ms
        self.inline = inline or not sys.executable
        self._job: _Job | None = None
        self._last_check_ms: int | None = None
        self.cleans = 0  # finished cleans that swapped something in (for tests and metrics)
        self.records_removed = 0

    @property
    def busy(self) -> bool:
        return self._job is not None

    def tick(self, logs: Iterable[PartitionLog], now_ms: int) -> None:
        """Swap in a finished clean; start the next one when the backoff has passed."""
        job = self._job
        if job is not None:
            if job.process.poll() is None:
                return
            self._job = None
            self._finish(job, now_ms)
        if self._last_check_ms is not None and now_ms - self._last_check_ms < self.backoff_ms:
            return
        self._last_check_ms = now_ms
        best: tuple[float, PartitionLog] | None = None
        for plog in logs:
            config = plog.config
            if not config.compact or config.append_only or plog.offline:
                continue
            ratio = plog.dirty_ratio()
            if ratio >= config.min_cleanable_dirty_ratio and ratio > 0 and (best is None or ratio > best[0]):
                best = (ratio, plog)
        if best is None:
            return
        plog = best[1]
        plan = plog.plan_clean(now_ms)
        if plan is None:
            return
        if self.inline:
            try:
                self._install(plog, plan, run_clean(plan), now_ms)
            except (OSError, StorageError, ValueError) as exc:
                log.error("compaction of %s failed: %s", plog.directory, exc)
            return
        self._start(plog, plan)

    def _start(self, plog: PartitionLog, plan: CleanPlan) -> None:
        directory = plog.directory
        plan_path, result_path = directory / _PLAN_FILE, directory / _RESULT_FILE
        try:
            result_path.unlink(missing_ok=True)
            plan_path.write_text(plan.to_json())
            process = subprocess.Popen(
                [sys.executable, "-m", "riel.storage.clean_worker", str(plan_path), str(result_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except OSError as exc:
            log.error("cannot start the log cleaner for %s: %s", directory, exc)
            return
        self._job = _Job(plog, plan, process, result_path)

    def _finish(self, job: _Job, now_ms: int) -> None:
        directory = job.plog.directory
        try:
            outcome = json.loads(job.result_path.read_text())
        except (OSError, ValueError) as exc:
            outcome = {"error": f"no result from the worker (exit code {job.process.returncode}): {exc}"}
        finally:
            for name in (_PLAN_FILE, _RESULT_FILE):
                with contextlib.suppress(OSError):
                    (directory / name).unlink()
        if "error" in outcome:
            log.error("compaction of %s failed: %s", directory, outcome["error"])
            with contextlib.suppress(OSError):
                discard_cleaned(directory)
            return
        try:
            cleaned = [CleanedGroup.from_dict(group) for group in outcome["cleaned"]]
            self._install(job.plog, job.plan, cleaned, now_ms)
        except (OSError, StorageError, KeyError, TypeError, AssertionError) as exc:
            log.error("installing the compaction of %s failed: %s", directory, exc)

    def _install(self, plog: PartitionLog, plan: CleanPlan, cleaned: list[CleanedGroup], now_ms: int) -> None:
        removed = plog.install_clean(plan, cleaned, now_ms)
        if cleaned:
            self.cleans += 1
            self.records_removed += removed
            log.info(
                "compacted %s: %d segment group(s) rewritten, %d record(s) removed",
                plog.directory,
                len(cleaned),
                removed,
            )

    def cancel(self, plog: PartitionLog) -> None:
        """Stop a clean of ``plog`` (its topic is being deleted or the log closed)."""
        job = self._job
        if job is not None and job.plog is plog:
            self._job = None
            self._stop(job)

    def close(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            self._stop(job)

    @staticmethod
    def _stop(job: _Job) -> None:
        job.process.kill()
        job.process.wait()
        with contextlib.suppress(OSError):  # the next open would remove them as well
            discard_cleaned(job.plog.directory)
