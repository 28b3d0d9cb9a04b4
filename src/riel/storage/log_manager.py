"""Every partition log of a data directory, plus the topic catalogue that says which ones exist.

Data directory layout::

    <data_dir>/
      .lock              fcntl.flock'ed while open; holds the owner's pid (for the error message)
      .clean-shutdown    present only between a clean close and the next open
      metadata.json      topics, topic ids, partition counts, explicit topic configs (atomic)
      topics/<topic>-<partition>/   one PartitionLog each (see partition_log.py)

Topic deletion first removes the topic from ``metadata.json``, then renames its partition directories
to ``<dir>.<random>-delete`` and removes them; a crash in between leaves directories that ``open``
finishes removing. Directories that belong to no known topic are removed at open for the same reason.

Not thread-safe: the broker calls everything from its single event-loop thread.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from types import TracebackType
from typing import Final

from riel.clock import wall_clock_ms
from riel.config import TOPIC_CONFIG_DEFAULTS, FlushPolicy
from riel.errors import ErrorCode, KafkaApiError, StorageError
from riel.storage.atomic_file import fsync_dir
from riel.storage.cleaner_jobs import CLEANER_BACKOFF_MS, LogCleaner
from riel.storage.dir_lock import DataDirLock
from riel.storage.log_config import (
    APPEND_ONLY,
    LogConfig,
    check_append_only_change,
    validate_topic_configs,
)
from riel.storage.metadata_store import TopicInfo, load_topics, save_topics
from riel.storage.partition_log import PartitionLog

__all__ = ["LogManager", "TopicInfo"]

log = logging.getLogger(__name__)

TOPICS_DIR: Final = "topics"
CLEAN_SHUTDOWN_FILE: Final = ".clean-shutdown"
DELETE_SUFFIX: Final = "-delete"
MAX_TOPIC_NAME_LENGTH: Final = 249
CHECKPOINT_INTERVAL_MS: Final = 60_000  # Kafka's log.flush.offset.checkpoint.interval.ms
RETENTION_CHECK_INTERVAL_MS: Final = 300_000  # Kafka's log.retention.check.interval.ms
_LEGAL_TOPIC_NAME: Final = re.compile(r"[a-zA-Z0-9._-]+")


def validate_topic_name(name: str) -> None:
    """Kafka's rules; ``KafkaApiError(INVALID_TOPIC_EXCEPTION)`` explaining which one is broken."""
    if not name:
        raise KafkaApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, "topic name is empty")
    if name in (".", ".."):
        raise KafkaApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise KafkaApiError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"topic name is {len(name)} characters long; the maximum is {MAX_TOPIC_NAME_LENGTH}",
        )
    if not _LEGAL_TOPIC_NAME.fullmatch(name):
        raise KafkaApiError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"topic name {name!r} may only contain ASCII letters, digits, '.', '_' and '-'",
        )


def new_topic_id() -> uuid.UUID:
    """A random topic id, avoiding the ones Kafka avoids: zero, and ids whose base64 form starts with
    '-' (command-line tools would read those as options)."""
    while True:
        topic_id = uuid.uuid4()
        if topic_id.int and not base64.urlsafe_b64encode(topic_id.bytes).startswith(b"-"):
            return topic_id


class LogManager:
    """Opens, creates and deletes partition logs; owns the data-directory lock.

    Failure modes: ``DataDirLockedError`` from ``open`` if another process holds the directory;
    ``KafkaApiError`` for invalid admin requests (nothing changes); ``StorageError`` when the disk
    fails or the catalogue is damaged.
    """

    def __init__(
        self,
        data_dir: Path,
        flush: FlushPolicy,
        topic_defaults: dict[str, str],
        *,
        owner_note: str = "",
        retention_check_interval_ms: int = RETENTION_CHECK_INTERVAL_MS,
        cleaner_backoff_ms: int = CLEANER_BACKOFF_MS,
    ) -> None:
        """``owner_note`` is written to the lock file for the error another opener gets;
        ``retention_check_interval_ms`` is Kafka's log.retention.check.interval.ms and
        ``cleaner_backoff_ms`` its log.cleaner.backoff.ms (how often compaction looks for work)."""
        self.retention_check_interval_ms = retention_check_interval_ms
        self.cleaner = LogCleaner(backoff_ms=cleaner_backoff_ms)
        self._last_retention_ms = 0
        self.data_dir = Path(data_dir)
        self.flush_policy = flush
        self.topic_defaults = {**TOPIC_CONFIG_DEFAULTS, **topic_defaults}
        self._lock = DataDirLock(self.data_dir, owner_note)
        self._topics: dict[str, TopicInfo] = {}
        self._topics_by_id: dict[uuid.UUID, TopicInfo] = {}
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._opened = False
        self._last_checkpoint_ms = 0
        self.recovered_unclean = False  # whether the last open() found no clean-shutdown marker

    @property
    def topics_dir(self) -> Path:
        return self.data_dir / TOPICS_DIR

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.topics_dir / f"{topic}-{partition}"

    # ----------------------------------------------------------------------------------------------
    # Lifecycle

    def open(self, now_ms: int | None = None) -> None:
        """Lock the directory, load the catalogue and open (recovering as needed) every partition."""
        if self._opened:
            return
        now = wall_clock_ms() if now_ms is None else now_ms
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            stored = load_topics(self.data_dir)
            self.topics_dir.mkdir(exist_ok=True)
            marker = self.data_dir / CLEAN_SHUTDOWN_FILE
            clean = marker.exists()
            self.recovered_unclean = not clean
            self._remove_stale_directories(stored)
            self._topics = dict(stored or {})
            self._topics_by_id = {info.topic_id: info for info in self._topics.values()}
            for info in self._topics.values():
                config = LogConfig.from_configs(self.effective_config(info.name))
                for index in range(info.partitions):
                    self._logs[(info.name, index)] = PartitionLog.open(
                        self.partition_dir(info.name, index),
                        config,
                        self.flush_policy,
                        clean_shutdown=clean,
                        now_ms=now,
                    )
            if stored is None:
                save_topics(self.data_dir, self._topics)
            if clean:
                # Durably gone before anything is appended: a later crash must not look clean.
                marker.unlink()
                fsync_dir(self.data_dir)
        except BaseException:
            for plog in self._logs.values():
                plog.close(clean=False)
            self._logs.clear()
            self._lock.release()
            raise
        self._last_checkpoint_ms = now
        self._opened = True

    def close(self, *, clean: bool = True) -> None:
        """``clean``: flush and seal every partition, then write the clean-shutdown marker so the next
        open skips recovery. ``clean=False`` drops everything as a crash would (tests, fatal errors).
        The lock is released either way."""
        if not self._opened:
            return
        failed: list[str] = []
        self.cleaner.close()
        try:
            for (topic, index), plog in self._logs.items():
                if plog.offline:
                    # No clean-shutdown marker then: the next open must fully recover this log.
                    failed.append(f"{topic}-{index}: offline after an earlier disk error")
                try:
                    plog.close(clean=clean)
                except (OSError, StorageError) as exc:
                    failed.append(f"{topic}-{index}: {exc}")
                    plog.close(clean=False)
            if clean and not failed:
                fd = os.open(self.data_dir / CLEAN_SHUTDOWN_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
                os.fsync(fd)
                os.close(fd)
                fsync_dir(self.data_dir)
        finally:
            self._logs.clear()
            self._opened = False
            self._lock.release()
        if failed:
            raise StorageError("closing partitions failed: " + "; ".join(failed))

    def __enter__(self) -> LogManager:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(clean=exc_type is None)

    def _remove_stale_directories(self, stored: dict[str, TopicInfo] | None) -> None:
        """Finish interrupted deletions and drop directories of topics the catalogue does not know."""
        wanted: set[str] = set()
        for info in (stored or {}).values():
            wanted.update(f"{info.name}-{index}" for index in range(info.partitions))
        for entry in os.scandir(self.topics_dir):
            if not entry.is_dir() or entry.name in wanted:
                continue
            if not entry.name.endswith(DELETE_SUFFIX):
                if stored is None:
                    raise StorageError(
                        f"{self.data_dir / 'metadata.json'} is missing but {entry.path} exists; "
                        "refusing to guess which topics this directory holds"
                    )
                log.warning(
                    "removing %s: it belongs to no known topic (interrupted create or delete)", entry.path
                )
            shutil.rmtree(entry.path, ignore_errors=True)

    def _check_open(self) -> None:
        if not self._opened:
            raise StorageError("the log manager is not open")

    # ----------------------------------------------------------------------------------------------
    # Topics

    def topics(self) -> dict[str, TopicInfo]:
        return dict(self._topics)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._topics_by_id.get(topic_id)

    def partition(self, topic: str, index: int) -> PartitionLog | None:
        return self._logs.get((topic, index))

    def effective_config(self, topic: str) -> dict[str, str]:
        """Broker defaults overlaid with the topic's explicit configs."""
        info = self._topics.get(topic)
        if info is None:
            raise KafkaApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {topic!r} does not exist")
        return {**self.topic_defaults, **info.configs}

    def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> TopicInfo:
        """Create the topic's partition directories, then record it in the catalogue."""
        self._check_open()
        validate_topic_name(name)
        if name in self._topics:
            raise KafkaApiError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        # Kafka refuses names that differ only by '.' vs '_': its metric names would collide.
        folded = name.replace(".", "_")
        for existing in self._topics:
            if existing.replace(".", "_") == folded:
                raise KafkaApiError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION,
                    f"topic {name!r} collides with existing topic {existing!r}",
                )
        if partitions < 1:
            raise KafkaApiError(
                ErrorCode.INVALID_PARTITIONS, f"number of partitions must be at least 1, got {partitions}"
            )
        explicit = validate_topic_configs(configs or {})
        check_append_only_change(name, {}, {**self.topic_defaults, **explicit})
        info = TopicInfo(name, new_topic_id(), partitions, explicit)
        config = LogConfig.from_configs({**self.topic_defaults, **explicit})
        self._open_new_partitions(info, range(partitions), config)
        self._commit_topics({**self._topics, name: info})
        return info

    def delete_topic(self, name: str) -> None:
        """Forget the topic (durably), then remove its directories."""
        self._check_open()
        info = self._topics.get(name)
        if info is None:
            raise KafkaApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        if self.effective_config(name).get(APPEND_ONLY) == "true":
            log.warning("refused to delete append-only topic %r", name)
            raise KafkaApiError(
                ErrorCode.TOPIC_DELETION_DISABLED,
                f"topic {name!r} is append-only (riel.append.only=true): it cannot be deleted",
            )
        remaining = dict(self._topics)
        del remaining[name]
        self._commit_topics(remaining)
        doomed: list[Path] = []
        for index in range(info.partitions):
            plog = self._logs.pop((name, index), None)
            if plog is not None:
                self.cleaner.cancel(plog)
                plog.close(clean=False)  # its data is going away: nothing worth flushing
            directory = self.partition_dir(name, index)
            suffix = f".{uuid.uuid4().hex[:8]}{DELETE_SUFFIX}"
            # File names stop at 255 bytes; the prefix only needs to be recognizable.
            target = directory.with_name(directory.name[: 255 - len(suffix)] + suffix)
            with contextlib.suppress(FileNotFoundError):
                directory.rename(target)
                doomed.append(target)
        fsync_dir(self.topics_dir)
        for path in doomed:
            shutil.rmtree(path, ignore_errors=True)

    def create_partitions(self, name: str, new_total: int) -> TopicInfo:
        """Grow the topic to ``new_total`` partitions (Kafka cannot shrink one)."""
        self._check_open()
        info = self._topics.get(name)
        if info is None:
            raise KafkaApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        if new_total <= info.partitions:
            raise KafkaApiError(
                ErrorCode.INVALID_PARTITIONS,
                f"topic {name!r} has {info.partitions} partitions; the new count {new_total} must be larger",
            )
        grown = TopicInfo(name, info.topic_id, new_total, dict(info.configs))
        config = LogConfig.from_configs(self.effective_config(name))
        self._open_new_partitions(grown, range(info.partitions, new_total), config)
        self._commit_topics({**self._topics, name: grown})
        return grown

    def alter_topic_configs(self, name: str, configs: dict[str, str]) -> TopicInfo:
        """Replace the topic's explicit configs with ``configs``; open partitions apply them at once."""
        self._check_open()
        info = self._topics.get(name)
        if info is None:
            raise KafkaApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        explicit = validate_topic_configs(configs)
        try:
            check_append_only_change(name, self.effective_config(name), {**self.topic_defaults, **explicit})
        except KafkaApiError as exc:
            log.warning("refused a config change of topic %r: %s", name, exc.message)
            raise
        altered = TopicInfo(name, info.topic_id, info.partitions, explicit)
        self._commit_topics({**self._topics, name: altered})
        config = LogConfig.from_configs(self.effective_config(name))
        for index in range(altered.partitions):
            plog = self._logs.get((name, index))
            if plog is not None:
                plog.update_config(config)
        return altered

    def _open_new_partitions(self, info: TopicInfo, indexes: range, config: LogConfig) -> None:
        """Create empty partition logs; on failure remove what was created and raise ``StorageError``."""
        created: list[int] = []
        try:
            for index in indexes:
                directory = self.partition_dir(info.name, index)
                if directory.exists():  # left over from a crash before the catalogue knew the topic
                    shutil.rmtree(directory)
                self._logs[(info.name, index)] = PartitionLog.open(directory, config, self.flush_policy)
                created.append(index)
            fsync_dir(self.topics_dir)
        except OSError as exc:
            for index in created:
                self._logs.pop((info.name, index)).close(clean=False)
                shutil.rmtree(self.partition_dir(info.name, index), ignore_errors=True)
            raise StorageError(f"creating partitions of {info.name!r} failed: {exc}") from exc

    def _commit_topics(self, topics: dict[str, TopicInfo]) -> None:
        try:
            save_topics(self.data_dir, topics)
        except OSError as exc:
            raise StorageError(f"writing the topic catalogue failed: {exc}") from exc
        self._topics = topics
        self._topics_by_id = {info.topic_id: info for info in topics.values()}

    # ----------------------------------------------------------------------------------------------
    # Periodic work

    def tick(self, now_ms: int) -> None:
        """Call every 100 ms to 1 s from the event loop: fsyncs partitions whose ``interval`` flush is
        due (so a quiet partition's tail is not left unflushed), every 60 s persists recovery points so
        an unclean restart has less to validate, and every ``retention_check_interval_ms`` deletes
        segments past retention; compaction runs as ``LogCleaner`` schedules it. Disk errors are logged
        per partition."""
        for (topic, index), plog in self._logs.items():
            try:
                plog.flush_if_due(now_ms)
            except StorageError as exc:
                log.error("flushing %s-%d failed: %s", topic, index, exc)
        if now_ms - self._last_checkpoint_ms >= CHECKPOINT_INTERVAL_MS:
            self._last_checkpoint_ms = now_ms
            self.checkpoint()
        if now_ms - self._last_retention_ms >= self.retention_check_interval_ms:
            self._last_retention_ms = now_ms
            self.apply_retention(now_ms)
        self.cleaner.tick(self._logs.values(), now_ms)

    def apply_retention(self, now_ms: int) -> int:
        """Delete whole segments past their topic's retention.ms / retention.bytes in every partition
        (never of append-only topics); returns how many went. Disk errors are logged per partition."""
        deleted = 0
        for (topic, index), plog in self._logs.items():
            plog.producer_state.expire(now_ms)  # the producers' share of retention (in memory)
            try:
                deleted += plog.apply_retention(now_ms)
            except (OSError, StorageError) as exc:
                log.error("retention of %s-%d failed: %s", topic, index, exc)
        return deleted

    def checkpoint(self) -> None:
        """Persist every partition's recovery point and log start offset that moved."""
        for (topic, index), plog in self._logs.items():
            try:
                plog.checkpoint()
            except OSError as exc:
                log.error("writing the checkpoint of %s-%d failed: %s", topic, index, exc)

    def flush(self) -> None:
        """fsync every partition now."""
        for plog in self._logs.values():
            plog.flush()
