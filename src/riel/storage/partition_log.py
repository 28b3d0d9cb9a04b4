"""The durable log of one partition: a directory of segments, appended to and read by offset.

Directory layout (``<data_dir>/topics/<topic>-<partition>/``)::

    00000000000000000000.log        record batches, verbatim, back to back
    00000000000000000000.index      sparse offset index (rebuildable cache)
    00000000000000000000.timeindex  sparse time index (rebuildable cache)
    00000000000000000000.chain      hash chain of the segment's batches (see hash_chain.py)
    00000000000000000000.txnindex   transactions aborted by a marker in the segment (txn_index.py)
    00000000000000004096.log ...    next segment, named by its base offset
    00000000000000004096.snapshot   producer state as of offset 4096 (written at roll and clean close)
    checkpoint.json                 {"recovery_point": N, "log_start_offset": M} (atomic)
    chain-recoveries.json           truncations and chain rebuilds done by recovery, compactions (atomic)
    cleaner-swap.json               a compaction's commit point, only while it is swapped in

Durability discipline (Kafka's): the recovery point is the offset below which everything is known to
be fsync'ed; it advances only after an fsync and is persisted lazily (at roll, clean close and
``checkpoint()``), which is safe because persisting an older value only means validating more on the
next unclean open. A roll always fsyncs the sealed segment and its indexes, whatever the flush policy,
so an unclean open validates (CRC) only from the persisted recovery point's segment to the end.

Hash chain: every append chains its batches (one SHA-256 per batch over the bytes in memory, one
pwrite); sealed segments' chains are fsync'ed with them; on open the active segment's chain is
reconciled with the recovered log (entries past its end dropped and recorded, missing ones hashed from
the file), and segments without a chain file get one built.

Transactions: the producer state knows each producer's open transaction; the last stable offset
(LSO) is the first offset of the oldest open one (or the high watermark). ``append_marker`` writes the
COMMIT/ABORT control batch that closes a producer's transaction; an ABORT adds an entry to the
segment's aborted-transaction index, which read_committed fetches return with their data.

Not thread-safe: the broker calls everything from its single event-loop thread.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from riel.clock import wall_clock_ms
from riel.config import FlushPolicy
from riel.errors import ErrorCode, KafkaApiError, StorageError
from riel.records.batch import decode_batch
from riel.records.batch_header import (
    LOG_OVERHEAD,
    TIMESTAMP_TYPE_MASK,
    BatchHeader,
    patch_base_offset,
    read_header,
    set_log_append_time,
    validate_batches,
)
from riel.records.control import ABORT, COMMIT, NOT_A_MARKER, marker_batch
from riel.records.errors import InvalidRecordError
from riel.storage.atomic_file import TMP_SUFFIX, fsync_dir, write_file_atomically
from riel.storage.file_reaper import DELETED_SUFFIX, unlink_later
from riel.storage.file_slice import FileSlice
from riel.storage.hash_chain import (
    CHAIN_SUFFIX,
    ZERO_HASH,
    ChainWriter,
    build_chain_file,
    hash_segment,
    last_hash_of,
    read_chain_header,
    record_compaction,
    record_recovery,
)
from riel.storage.log_cleaner import (
    CLEANED_SUFFIX,
    CleanedGroup,
    CleanGroup,
    CleanPlan,
    SourceSegment,
    commit_swap,
    finish_interrupted_swap,
    run_clean,
)
from riel.storage.log_config import LogConfig
from riel.storage.log_scan import INT32_MAX, producer_batches
from riel.storage.producer_state import (
    ProducerStateManager,
    load_latest_snapshot,
    snapshot_offsets,
    write_snapshot,
)
from riel.storage.record_policy import check_record_policies
from riel.storage.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, LogSegment, segment_file_name
from riel.storage.txn_index import (
    TXN_INDEX_SUFFIX,
    AbortedTxn,
    append_txn_index,
    fsync_txn_index,
    read_txn_index,
    write_txn_index,
)

__all__ = ["AppendResult", "FileSlice", "PartitionLog"]

log = logging.getLogger(__name__)

CHECKPOINT_FILE: Final = "checkpoint.json"
_TIMESTAMP_TYPE_LOG_APPEND: Final = 1


@dataclass(frozen=True, slots=True)
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    duplicate: bool = False  # an idempotent producer's retry: acknowledged again, nothing written


class PendingFlush:
    """An fsync of one segment file up to ``end_offset`` (``segment_size`` bytes of the segment based
    at ``segment_base``), safe to ``run`` on a worker thread."""

    __slots__ = ("end_offset", "fd", "segment_base", "segment_size")

    def __init__(self, fd: int, end_offset: int, segment_base: int, segment_size: int) -> None:
        self.fd = fd
        self.end_offset = end_offset
        self.segment_base = segment_base
        self.segment_size = segment_size

    def run(self) -> None:
        try:
            os.fdatasync(self.fd)
        finally:
            os.close(self.fd)


class PartitionLog:
    """Append, read and recover one partition's log. Create with ``PartitionLog.open``.

    Failure modes: ``KafkaApiError``/``InvalidRecordError`` for a bad request (nothing is written);
    ``StorageError`` when the disk fails. After a failed write that could not be undone, or any failed
    fsync (whose outcome the kernel does not report reliably), the log refuses further appends until it
    is reopened, which recovers it from disk.
    """

    def __init__(self, directory: Path, config: LogConfig, flush: FlushPolicy) -> None:
        self.directory = directory
        self._config = config
        self._flush_always = flush.name == "always"
        self._flush_interval = flush.name == "interval"
        self._flush_messages = flush.messages
        self._flush_ms = flush.ms
        self._segments: list[LogSegment] = []
        self._bases: list[int] = []  # segment base offsets, for bisect
        self._active: LogSegment | None = None
        self._log_start = 0
        self._recovery_point = 0
        # Bytes of the active segment known to be fsync'ed: reads under ``always`` stop there.
        self._durable_size = 0
        self._persisted_checkpoint: tuple[int, int] | None = None
        self._producers = ProducerStateManager()
        # Segment base offset -> the transactions aborted by a marker in that segment (its .txnindex).
        self._aborted: dict[int, list[AbortedTxn]] = {}
        self._unflushed_messages = 0
        self._first_unflushed_ms: int | None = None
        self._failure: str | None = None
        self._closed = False
        # Offsets below this are in segments the cleaner has been through (None: not yet looked up).
        self._cleaned_to: int | None = None

    # ----------------------------------------------------------------------------------------------
    # Properties

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def high_watermark(self) -> int:
        """The end of what consumers may see. Under the ``always`` flush policy that is the end of what
        is fsync'ed, so a consumer can never read (and commit past) a record that a crash could still
        take back; under the other policies it is the log end offset."""
        if self._flush_always:
            return self._recovery_point
        return self._active_segment.next_offset

    @property
    def log_end_offset(self) -> int:
        return self._active_segment.next_offset

    @property
    def last_stable_offset(self) -> int:
        """Where read_committed consumers stop: the first offset of the oldest open transaction, or
        the high watermark when none is open (or it starts above it)."""
        first = self._producers.first_unstable_offset()
        high_watermark = self.high_watermark
        return high_watermark if first is None else min(first, high_watermark)

    @property
    def offline(self) -> bool:
        """A write or fsync failed: appends are refused and the next open must recover the log."""
        return self._failure is not None

    @property
    def recovery_point(self) -> int:
        """Offsets below this are fsync'ed."""
        return self._recovery_point

    @property
    def config(self) -> LogConfig:
        return self._config

    @property
    def producer_state(self) -> ProducerStateManager:
        return self._producers

    @property
    def _active_segment(self) -> LogSegment:
        assert self._active is not None, "PartitionLog used before open()"
        return self._active

    def segment_base_offsets(self) -> list[int]:
        return list(self._bases)

    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    def update_config(self, config: LogConfig) -> None:
        """Apply new topic configs; they take effect from the next append."""
        self._config = config
        for segment in self._segments:
            segment.index_interval = config.index_interval_bytes

    # ----------------------------------------------------------------------------------------------
    # Opening and recovery

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        flush: FlushPolicy,
        *,
        clean_shutdown: bool = False,
        now_ms: int | None = None,
    ) -> PartitionLog:
        """Open (creating if needed) and recover the log in ``directory``.

        After a clean shutdown only cheap checks run on the last segment (indexes valid, the batches
        after its last index entry whole and CRC-clean); if they fail, or the shutdown was not clean,
        every segment from the one holding the persisted recovery point is validated batch by batch
        (CRC-32C), the first bad or torn batch and everything after it is truncated, and indexes are
        rebuilt. Producer state is reloaded from the newest snapshot plus the batch headers after it.
        """
        now = wall_clock_ms() if now_ms is None else now_ms
        directory.mkdir(parents=True, exist_ok=True)
        plog = cls(directory, config, flush)
        changed_files = finish_interrupted_swap(directory)  # before listing: it removes segments
        bases = _remove_leftovers_and_list_segments(directory)
        checkpoint = _read_checkpoint(directory)
        plog._persisted_checkpoint = checkpoint
        recovery_point = checkpoint[0] if checkpoint is not None else 0
        plog._log_start = checkpoint[1] if checkpoint is not None else (bases[0] if bases else 0)
        # Segments wholly below the log start: a DeleteRecords persisted its offset, then crashed.
        while len(bases) > 1 and bases[1] <= plog._log_start:
            _delete_segment_files(directory, bases.pop(0))
            changed_files = True
        interval = config.index_interval_bytes
        if not bases:
            plog._install(
                [
                    LogSegment.create(
                        directory, plog._log_start, now_ms=now, index_interval=interval, anchor=ZERO_HASH
                    )
                ]
            )
            changed_files = True
        else:
            changed_files |= plog._recover_segments(bases, recovery_point, clean_shutdown, now)
        plog._load_producer_state()
        if plog._log_start > plog.log_end_offset:
            # Recovery lost data the log start had already moved past: restart empty at the log start,
            # keeping (and persisting) the producer state the lost segments described.
            log.warning(
                "%s: log end %d is below log start %d after recovery; starting empty",
                directory,
                plog.log_end_offset,
                plog._log_start,
            )
            for segment in plog._segments:
                segment.delete()
            plog._install(
                [
                    LogSegment.create(
                        directory, plog._log_start, now_ms=now, index_interval=interval, anchor=ZERO_HASH
                    )
                ]
            )
            record_recovery(
                directory,
                segment=plog._log_start,
                from_offset=plog.log_end_offset,
                reason="recovery lost the log below the log start: restarted empty, chain restarted",
                now_ms=now,
                truncated=True,
                lost_durable=recovery_point > plog.log_end_offset,
            )
            write_snapshot(directory, plog._log_start, plog._producers, keep_from=plog._log_start)
            changed_files = True
        changed_files |= plog._attach_chains(now, recovery_point)
        plog._log_start = max(plog._log_start, plog._segments[0].base_offset)
        plog._recovery_point = plog.log_end_offset  # recovered segments were fsync'ed, the others sealed
        plog._durable_size = plog._active_segment.size
        if changed_files:
            fsync_dir(directory)
        plog.checkpoint()
        return plog

    def _install(self, segments: list[LogSegment]) -> None:
        self._segments = segments
        self._bases = [segment.base_offset for segment in segments]
        self._active = segments[-1]

    def _recover_segments(self, bases: list[int], recovery_point: int, clean: bool, now: int) -> bool:
        """Open the segments at ``bases``; True if files were truncated or deleted."""
        directory = self.directory
        interval = self._config.index_interval_bytes
        count = len(bases)
        # After a clean shutdown only the last segment is checked; otherwise everything from the
        # segment holding the recovery point is validated.
        first_recovered = count - 1 if clean else max(0, bisect.bisect_right(bases, recovery_point) - 1)
        segments = [
            LogSegment.open_sealed(
                directory, bases[i], next_offset=bases[i + 1], now_ms=now, index_interval=interval
            )
            for i in range(first_recovered)
        ]
        if clean:
            active = LogSegment.open_after_clean_shutdown(
                directory, bases[-1], now_ms=now, index_interval=interval
            )
            if active is not None:
                self._install([*segments, active])
                return False
            log.warning("%s: clean-shutdown checks failed on the last segment; recovering it", directory)
        changed = False
        for i in range(first_recovered, count):
            segment, scan = LogSegment.recover(directory, bases[i], now_ms=now, index_interval=interval)
            segments.append(segment)
            overlaps_next = i + 1 < count and bases[i + 1] < segment.next_offset
            if scan.error is not None or overlaps_next:
                reason = scan.error or f"its offsets run into the next segment {bases[i + 1]}"
                log.warning(
                    "%s: recovery truncated segment %d at byte %d (%s); removing %d later segment(s)",
                    directory,
                    bases[i],
                    scan.valid_size,
                    reason,
                    count - i - 1,
                )
                for later in bases[i + 1 :]:
                    _delete_segment_files(directory, later)
                record_recovery(
                    directory,
                    segment=bases[i],
                    from_offset=segment.next_offset,
                    reason=f"crash recovery truncated segment {bases[i]} at byte {scan.valid_size} "
                    f"({reason}) and removed {count - i - 1} later segment(s)",
                    now_ms=now,
                    truncated=True,
                    lost_durable=recovery_point > segment.next_offset,
                )
                changed = True
                break
        self._install(segments)
        return changed

    def _attach_chains(self, now: int, recovery_point: int) -> bool:
        """Give sealed segments without a chain file one (logs written before chains existed) and open
        the active segment's chain, reconciled with the recovered log. True if files were created."""
        segments = self._segments
        created = False
        for i, segment in enumerate(segments[:-1]):
            if segment.chain_path.exists():
                continue
            anchor = self._last_hash_before(i)
            build_chain_file(segment.chain_path, segment.log_path, segment.size, anchor)
            record_recovery(
                self.directory,
                segment=segment.base_offset,
                from_offset=segment.base_offset,
                reason=f"segment {segment.base_offset} had no chain file: built from the log",
                now_ms=now,
                truncated=False,
            )
            created = True
        active = self._active_segment
        if active.chain is None:
            created |= not active.chain_path.exists()
            self._resume_chain(len(segments) - 1, now, recovery_point)
        return created

    def _last_hash_before(self, i: int) -> bytes:
        if i == 0:
            return ZERO_HASH
        found = last_hash_of(self._segments[i - 1].chain_path)
        return found if found is not None else ZERO_HASH

    def _resume_chain(self, i: int, now: int, recovery_point: int) -> None:
        """Open segment ``i``'s chain for appending, after cutting it back to the batches in the file
        (recorded, since that is a truncation) and chaining the batches it is missing."""
        segment = self._segments[i]
        directory = self.directory
        opened = ChainWriter.open_existing(segment.chain_path, segment.size)
        if opened is None:
            writer = ChainWriter.create(segment.chain_path, self._last_hash_before(i))
            if segment.size:
                record_recovery(
                    directory,
                    segment=segment.base_offset,
                    from_offset=segment.base_offset,
                    reason=f"segment {segment.base_offset}'s chain file was missing or damaged: "
                    "built from the log",
                    now_ms=now,
                    truncated=False,
                )
        else:
            writer, dropped = opened
            if dropped:
                record_recovery(
                    directory,
                    segment=segment.base_offset,
                    from_offset=segment.next_offset,
                    reason=f"{dropped} chained batch(es) past the recovered end of segment "
                    f"{segment.base_offset} were dropped from the chain",
                    now_ms=now,
                    truncated=True,
                    lost_durable=recovery_point > segment.next_offset,
                )
            if writer.count and segment.read_header(writer.last_position).base_offset != writer.last_offset:
                log.warning(
                    "%s: chain of segment %d does not match its log; rebuilding",
                    directory,
                    segment.base_offset,
                )
                writer.close()
                writer = ChainWriter.create(segment.chain_path, writer.anchor)
                record_recovery(
                    directory,
                    segment=segment.base_offset,
                    from_offset=segment.base_offset,
                    reason=f"segment {segment.base_offset}'s chain did not match its log: rebuilt",
                    now_ms=now,
                    truncated=False,
                )
        try:
            tail = hash_segment(segment.log_path, writer.end_position, segment.size, writer.last_hash)
            writer.append_hashed(tail)
        except BaseException:
            writer.close()
            raise
        segment.chain = writer

    def _load_producer_state(self) -> None:
        """Newest snapshot at or below the log end, plus a replay of the batch headers after it. The
        aborted-transaction indexes are rebuilt for the replayed range (entries before it are kept)."""
        found = load_latest_snapshot(self.directory, self.log_end_offset)
        if found is None:
            start, state = self._segments[0].base_offset, ProducerStateManager()
        else:
            start, state = found
        aborted: dict[int, list[AbortedTxn]] = {}
        for segment in self._segments:
            kept = [e for e in read_txn_index(segment.txn_index_path) if e.last_offset < start]
            if kept:
                aborted[segment.base_offset] = kept
        replayed = False
        for segment in self._segments:
            if segment.next_offset <= start or segment.size == 0:
                continue
            position = 0
            if start > segment.base_offset:
                located = segment.find_batch(start)
                position = located[0] if located is not None else segment.size
            for header, kind in producer_batches(segment.log_path, position, segment.size):
                first = state.update(header)
                replayed = True
                if first is not None and kind == ABORT:
                    entry = _aborted_entry(state, header, first)
                    aborted.setdefault(segment.base_offset, []).append(entry)
        state.changed = replayed or found is None
        self._producers = state
        for segment in self._segments:
            entries = aborted.get(segment.base_offset, [])
            if entries != read_txn_index(segment.txn_index_path):
                write_txn_index(segment.txn_index_path, entries)
        self._aborted = aborted

    # ----------------------------------------------------------------------------------------------
    # Appending

    def append(
        self, batches: bytearray | memoryview, now_ms: int, *, defer_flush: bool = False
    ) -> AppendResult:
        """Validate, deduplicate, assign offsets to and store the batches of one produce request.

        ``batches`` is patched in place (base offsets, and timestamps for LogAppendTime topics).
        With ``defer_flush`` the ``always`` policy's fsync is left to the caller, who must make the
        data durable (``prepare_flush``/``complete_flush``) before acknowledging it: that is how the
        broker runs fsyncs off the event loop and lets several produce requests share one.
        Raises ``InvalidRecordError``/``KafkaApiError`` for a bad request, ``StorageError`` for disk
        failures; in both cases nothing of the request is visible in the log.
        """
        if self._failure is not None or self._closed:
            raise StorageError(f"log {self.directory} is offline: {self._failure or 'closed'}")
        config = self._config
        headers = validate_batches(batches, config.max_message_bytes)
        for header in headers:  # (control batches were refused by validate_batches)
            if header.is_transactional and header.producer_id < 0:
                raise KafkaApiError(ErrorCode.INVALID_RECORD, "a transactional batch needs a producer id")
        if config.needs_record_checks:  # compacted topic, or CreateTime bounds: look inside the records
            check_record_policies(batches, headers, config, now_ms)
        duplicate = self._producers.check(headers)
        if duplicate is not None:
            return AppendResult(duplicate.base_offset, duplicate.last_offset, -1, self._log_start, True)
        return self._store(batches, headers, now_ms, defer_flush)

    def append_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        now_ms: int,
        *,
        defer_flush: bool = False,
    ) -> AppendResult:
        """Write the COMMIT or ABORT marker that ends ``producer_id``'s transaction in this partition
        (also when it wrote nothing here: the marker then only closes nothing, as in Kafka). An ABORT
        that closes an open transaction is recorded in the aborted-transaction index.
        ``defer_flush`` as for ``append``. Raises ``KafkaApiError(INVALID_PRODUCER_EPOCH)`` for an
        epoch older than the producer's, ``StorageError`` for disk failures."""
        if self._failure is not None or self._closed:
            raise StorageError(f"log {self.directory} is offline: {self._failure or 'closed'}")
        entry = self._producers.producers.get(producer_id)
        if entry is not None and producer_epoch < entry.epoch:
            raise KafkaApiError(
                ErrorCode.INVALID_PRODUCER_EPOCH,
                f"marker epoch {producer_epoch} is older than producer {producer_id}'s epoch {entry.epoch}",
            )
        batch = bytearray(marker_batch(producer_id, producer_epoch, commit, coordinator_epoch, now_ms))
        marker = COMMIT if commit else ABORT
        return self._store(batch, [read_header(batch)], now_ms, defer_flush, marker=marker)

    def _store(
        self,
        batches: bytearray | memoryview,
        headers: list[BatchHeader],
        now_ms: int,
        defer_flush: bool,
        marker: int = NOT_A_MARKER,
    ) -> AppendResult:
        """Assign offsets to validated batches, write them and update the producer state."""
        config = self._config
        segment = self._active_segment
        base_offset = offset = segment.next_offset
        log_append_time = config.log_append_time
        position = 0
        records = 0
        max_timestamp = -1
        for header in headers:
            patch_base_offset(batches, position, offset)
            header.base_offset = offset
            if log_append_time:
                header.crc = set_log_append_time(batches, position, now_ms)
                header.max_timestamp = now_ms
                header.attributes |= TIMESTAMP_TYPE_MASK
            if header.max_timestamp > max_timestamp:
                max_timestamp = header.max_timestamp
            offset += header.last_offset_delta + 1
            position += header.batch_length + LOG_OVERHEAD
            records += header.records_count
        last_offset = offset - 1
        if segment.size and self._should_roll(segment, position, max_timestamp, last_offset, now_ms):
            segment = self._roll(now_ms)
        try:
            segment.append(batches, headers)
        except StorageError as exc:
            if not segment.file_matches_size():  # the failed write could not be undone
                self._failure = str(exc)
            raise
        producers = self._producers
        for header in headers:
            if header.producer_id >= 0:
                first = producers.update(header)
                if first is not None and marker == ABORT:
                    self._record_abort(segment, _aborted_entry(producers, header, first))
        if self._flush_always:
            if not defer_flush:
                self.flush()
        elif self._flush_interval:
            self._unflushed_messages += records
            if self._first_unflushed_ms is None:
                self._first_unflushed_ms = now_ms
            if (self._flush_messages > 0 and self._unflushed_messages >= self._flush_messages) or (
                now_ms - self._first_unflushed_ms >= self._flush_ms
            ):
                self.flush()
        return AppendResult(base_offset, last_offset, now_ms if log_append_time else -1, self._log_start)

    def _record_abort(self, segment: LogSegment, entry: AbortedTxn) -> None:
        self._aborted.setdefault(segment.base_offset, []).append(entry)
        try:
            append_txn_index(segment.txn_index_path, entry)
        except OSError as exc:  # derived data: the next open rebuilds it from the log
            log.error("%s: writing the aborted-transaction index failed: %s", self.directory, exc)

    def aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions a read_committed fetch of [fetch_offset, upper_bound) must report:
        those whose marker is at or after ``fetch_offset`` and whose first offset is below the bound."""
        if not self._aborted:
            return []
        found: list[AbortedTxn] = []
        start = max(bisect.bisect_right(self._bases, fetch_offset) - 1, 0)
        for base in self._bases[start:]:
            for entry in self._aborted.get(base, ()):
                if entry.last_offset >= fetch_offset and entry.first_offset < upper_bound:
                    found.append(entry)
        return found

    def _should_roll(
        self, segment: LogSegment, size: int, max_timestamp: int, last_offset: int, now_ms: int
    ) -> bool:
        """Kafka's rules: size, age (by the first batch's timestamp), index capacity, int32 offsets."""
        config = self._config
        if segment.size + size > config.segment_bytes or segment.size + size > INT32_MAX:
            return True
        first = segment.first_batch_timestamp
        waited = max_timestamp - first if first is not None and first >= 0 else now_ms - segment.created_ms
        if waited > config.segment_ms:
            return True
        if len(segment.offset_index) >= config.max_index_entries:
            return True
        return last_offset - segment.base_offset > INT32_MAX

    def _roll(self, now_ms: int) -> LogSegment:
        """Seal the active segment (fsync'ed whatever the flush policy) and start a new one."""
        old = self._active_segment
        try:
            if old.chain is None:  # a chain write failed earlier: catch up from the file before sealing
                self._resume_chain(len(self._segments) - 1, now_ms, self._recovery_point)
            assert old.chain is not None
            anchor = old.chain.last_hash
            old.seal()
            fsync_txn_index(old.txn_index_path)
        except OSError as exc:
            self._failure = f"fsync failed while rolling: {exc}"
            raise StorageError(self._failure) from exc
        self._recovery_point = max(self._recovery_point, old.next_offset)
        self._durable_size = 0
        self._unflushed_messages = 0
        self._first_unflushed_ms = None
        try:
            new = LogSegment.create(
                self.directory,
                old.next_offset,
                now_ms=now_ms,
                index_interval=self._config.index_interval_bytes,
                anchor=anchor,
            )
        except OSError as exc:  # e.g. disk full: the old segment stays active, nothing was lost
            raise StorageError(f"cannot start a new segment in {self.directory}: {exc}") from exc
        old.chain.close()  # sealed segments keep no chain writer
        old.chain = None
        self._segments.append(new)
        self._bases.append(new.base_offset)
        self._active = new
        try:
            write_snapshot(self.directory, new.base_offset, self._producers, keep_from=new.base_offset)
            self.checkpoint()
            fsync_dir(self.directory)
        except OSError as exc:
            # The new segment is in place; these files only speed up recovery, which can do without.
            log.error("%s: writing the roll's snapshot or checkpoint failed: %s", self.directory, exc)
        return new

    def flush(self) -> None:
        """fsync everything appended so far and advance the recovery point (on this thread)."""
        pending = self.prepare_flush()
        if pending is None:
            return
        try:
            pending.run()
        except OSError as exc:
            self.complete_flush(pending, exc)
        self.complete_flush(pending, None)

    def prepare_flush(self) -> PendingFlush | None:
        """Start an fsync that may run on another thread: None if everything is already durable.

        The pending flush owns a duplicate of the active segment's descriptor, so a roll or close on
        the event loop meanwhile cannot pull the file out from under the worker thread.
        """
        if self._recovery_point >= self.log_end_offset:
            return None
        if self._failure is not None or self._closed:
            raise StorageError(f"log {self.directory} is offline: {self._failure or 'closed'}")
        active = self._active_segment
        try:
            fd = os.dup(active.fd)
        except OSError as exc:
            raise StorageError(f"cannot flush {self.directory}: {exc}") from exc
        return PendingFlush(fd, self.log_end_offset, active.base_offset, active.size)

    def complete_flush(self, pending: PendingFlush, error: OSError | None) -> None:
        """Record the outcome of ``pending.run()`` (called back on the event loop thread)."""
        if error is not None:
            self._failure = f"fsync failed: {error}"
            raise StorageError(f"fsync of {self.directory} failed: {error}") from error
        if pending.end_offset > self._recovery_point:
            self._recovery_point = pending.end_offset
            if self._active_segment.base_offset == pending.segment_base:
                self._durable_size = max(self._durable_size, pending.segment_size)
            if self._recovery_point >= self.log_end_offset:
                self._unflushed_messages = 0
                self._first_unflushed_ms = None

    def flush_if_due(self, now_ms: int) -> None:
        """For the ``interval`` policy: flush when the oldest unflushed append is ``ms`` old."""
        first = self._first_unflushed_ms
        if self._flush_interval and first is not None and now_ms - first >= self._flush_ms:
            self.flush()

    def checkpoint(self) -> None:
        """Persist the recovery point and log start offset if they moved (atomic file write)."""
        current = (self._recovery_point, self._log_start)
        if current == self._persisted_checkpoint:
            return
        data = json.dumps({"version": 1, "recovery_point": current[0], "log_start_offset": current[1]})
        write_file_atomically(self.directory / CHECKPOINT_FILE, data.encode())
        self._persisted_checkpoint = current

    # ----------------------------------------------------------------------------------------------
    # Reading

    def read(self, offset: int, max_bytes: int, *, min_one: bool = True) -> FileSlice | None:
        """Whole batches from the one containing ``offset``, within one segment, at most ``max_bytes``
        (unless ``min_one`` and the first batch alone is larger: KIP-74). None at the log end, or when
        the first batch does not fit and ``min_one`` is false.

        The caller owns the returned ``FileSlice`` and must ``close()`` it after sending.
        Raises ``KafkaApiError(OFFSET_OUT_OF_RANGE)`` outside [log start, log end].
        """
        found = self.read_with_next_offset(offset, max_bytes, min_one=min_one)
        return None if found is None else found[0]

    def read_with_next_offset(
        self, offset: int, max_bytes: int, *, min_one: bool = True, end: int | None = None
    ) -> tuple[FileSlice, int] | None:
        """``read``, plus the offset that follows the returned batches (their last offset + 1, or the
        next batch's base offset across a compaction gap): Fetch counts the messages it serves from it
        without reading the records (at most one small pread more than ``read`` needs). ``end``
        (the LSO, for read_committed) stops the read before that offset, which starts a batch."""
        stop_at = end
        end = self._active_segment.next_offset
        visible = self.high_watermark if stop_at is None else min(stop_at, self.high_watermark)
        if visible <= offset <= end and offset >= self._log_start:
            return None  # nothing visible yet at this offset (under ``always``: not yet fsync'ed)
        if offset < self._log_start or offset > end:
            raise KafkaApiError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {offset} is outside [{self._log_start}, {end}]",
            )
        segments = self._segments
        i = bisect.bisect_right(self._bases, offset) - 1
        found: tuple[int, int] | None = None
        segment = segments[i]
        while True:
            found = segment.find_batch(offset)
            if found is not None:
                break
            i += 1  # the offset sits past this segment's last batch: start at the next segment
            if i >= len(segments):
                return None
            segment = segments[i]
        position, first_size = found
        limit = position + max_bytes
        if stop_at is not None and visible < segment.next_offset:  # the LSO falls inside this segment
            bound = segment.find_batch(visible)
            if bound is not None:
                limit = min(limit, bound[0])
        if self._flush_always and segment is self._active_segment:
            if position + first_size > self._durable_size:
                return None  # never serve bytes that are not yet fsync'ed
            limit = min(limit, self._durable_size)
        if first_size > max_bytes:
            if not min_one:
                return None
            stop, next_offset = segment.end_of_whole_batches(position, position + first_size)
            return FileSlice(segment.fd, position, stop - position), next_offset
        stop, next_offset = segment.end_of_whole_batches(position, limit)
        return FileSlice(segment.fd, position, stop - position), next_offset

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= ``timestamp_ms``, or None.

        Batches are found through the time indexes; the record inside the batch is found by decoding
        it (decompressing if needed); if that is impossible (codec library missing) the batch's first
        offset and max timestamp are returned instead.
        """
        start = self._log_start
        for segment in self._segments:
            if segment.next_offset <= start or segment.size == 0:
                continue
            if segment.largest_timestamp()[0] < timestamp_ms:
                continue
            found = segment.find_by_timestamp(timestamp_ms, start)
            if found is not None:
                return self._first_record_at_or_after(segment, found[0], found[1], timestamp_ms, start)
        return None

    def max_timestamp(self) -> tuple[int, int]:
        """(offset, timestamp) of the first record with the largest timestamp at or after the log
        start; (-1, -1) when there is none. Segments answer from their time index; only a segment cut
        by the log start is walked batch by batch, since its maximum may be in a deleted record."""
        start = self._log_start
        best: tuple[int, int] | None = None  # (timestamp, offset)
        for segment in self._segments:
            if segment.next_offset <= start or segment.size == 0:
                continue
            timestamp, batch_offset = segment.largest_timestamp()
            if timestamp < 0 or (best is not None and timestamp <= best[0]):
                continue
            if segment.base_offset < start:
                candidate = self._live_maximum(segment, start)
            else:
                located = segment.position_of(batch_offset)
                candidate = None
                if located is not None:
                    offset, found = self._first_record_at_or_after(segment, *located, timestamp, start)
                    candidate = (found, offset)
            if candidate is not None and (best is None or candidate[0] > best[0]):
                best = candidate
        return (best[1], best[0]) if best is not None else (-1, -1)

    def _live_maximum(self, segment: LogSegment, start: int) -> tuple[int, int] | None:
        """(timestamp, offset) of the largest-timestamp record at or after ``start`` in ``segment``."""
        located = segment.find_batch(start)
        if located is None:
            return None
        position = located[0]
        winner: tuple[int, int, BatchHeader] | None = None  # (timestamp, position, header)
        while position < segment.size:
            header = segment.read_header(position)
            timestamp = header.max_timestamp
            if header.base_offset < start and header.timestamp_type != _TIMESTAMP_TYPE_LOG_APPEND:
                try:  # the first batch is cut by the log start: only its live records count
                    live = decode_batch(segment.read_bytes(position, header.size), verify_crc=False)
                    timestamp = max(r.timestamp for r in live if r.offset >= start)
                except (InvalidRecordError, ValueError):
                    pass
            if winner is None or timestamp > winner[0]:
                winner = (timestamp, position, header)
            position += header.size
        if winner is None or winner[0] < 0:
            return None
        offset, found = self._first_record_at_or_after(segment, winner[1], winner[2], winner[0], start)
        return found, offset

    def _first_record_at_or_after(
        self, segment: LogSegment, position: int, header: BatchHeader, timestamp: int, min_offset: int
    ) -> tuple[int, int]:
        fallback = (max(header.base_offset, min_offset), header.max_timestamp)
        if header.timestamp_type == _TIMESTAMP_TYPE_LOG_APPEND:
            return fallback  # every record carries the batch's max timestamp
        try:
            records = decode_batch(segment.read_bytes(position, header.size), verify_crc=False)
        except InvalidRecordError:
            return fallback
        for record in records:
            if record.timestamp >= timestamp and record.offset >= min_offset:
                return record.offset, record.timestamp
        return fallback

    # ----------------------------------------------------------------------------------------------
    # Deleting

    def delete_records(self, before_offset: int) -> int:
        """Move the log start offset up to ``before_offset`` (persisted before any file goes) and delete
        the segments wholly below it. Returns the new log start offset.

        Raises ``KafkaApiError(OFFSET_OUT_OF_RANGE)`` if ``before_offset`` is negative or above the log end.
        """
        if self._config.append_only:
            log.warning("%s: refused DeleteRecords on an append-only topic", self.directory)
            raise KafkaApiError(
                ErrorCode.POLICY_VIOLATION,
                "the topic is append-only (riel.append.only=true): records cannot be deleted",
            )
        end = self.high_watermark
        if before_offset < 0 or before_offset > end:
            raise KafkaApiError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"cannot delete records before {before_offset}: log ends at {end}",
            )
        if before_offset <= self._log_start:
            return self._log_start
        self._log_start = before_offset
        self.checkpoint()
        active = self._active_segment
        if active.size and active.next_offset <= before_offset:
            self._roll(wall_clock_ms())  # every batch goes: keep an empty active segment at the end
        doomed = 0
        while doomed + 1 < len(self._segments) and self._segments[doomed + 1].base_offset <= before_offset:
            doomed += 1
        self._delete_oldest_segments(doomed)
        return self._log_start

    def _delete_oldest_segments(self, count: int) -> None:
        """Delete the ``count`` oldest segments (never the active one) and move the log start past
        them. Readers holding a FileSlice keep their own descriptors, so a fetch in flight completes.
        The files are renamed here and unlinked by ``file_reaper``'s thread (unlinking a big file
        is slow)."""
        count = min(count, len(self._segments) - 1)
        if count <= 0:
            return
        retired: list[Path] = []
        for _ in range(count):
            retired += self._segments.pop(0).retire()  # renamed now, unlinked off this thread
            self._aborted.pop(self._bases.pop(0), None)
        if self._segments[0].base_offset > self._log_start:
            self._log_start = self._segments[0].base_offset
        self.checkpoint()
        fsync_dir(self.directory)
        unlink_later(retired)

    def apply_retention(self, now_ms: int) -> int:
        """Kafka's delete retention: drop the oldest segments whose newest record is older than
        retention.ms, then while the log exceeds retention.bytes by at least a whole oldest segment.
        The active segment is rolled first when all of it has expired by time, so an idle topic
        empties too. Nothing happens to append-only or compact-only topics. Returns segments deleted."""
        config = self._config
        if config.append_only or not config.delete_policy or self._failure is not None or self._closed:
            return 0
        if config.retention_ms >= 0:
            active = self._active_segment
            newest = active.largest_timestamp()[0]
            if active.size and 0 <= newest < now_ms - config.retention_ms and len(self._segments) >= 1:
                self._roll(now_ms)
        doomed = 0
        segments = self._segments
        if config.retention_ms >= 0:
            limit = now_ms - config.retention_ms
            while doomed + 1 < len(segments) and segments[doomed].largest_timestamp()[0] < limit:
                doomed += 1
        if config.retention_bytes >= 0:
            excess = sum(segment.size for segment in segments[doomed:]) - config.retention_bytes
            while doomed + 1 < len(segments) and excess - segments[doomed].size >= 0:
                excess -= segments[doomed].size
                doomed += 1
        self._delete_oldest_segments(doomed)
        return doomed

    # ----------------------------------------------------------------------------------------------
    # Compaction (the work itself is in log_cleaner.py)

    def dirty_ratio(self) -> float:
        """Share of the sealed bytes at or above the log start that no clean has been through yet
        (Kafka's cleanable ratio, compared with min.cleanable.dirty.ratio)."""
        sealed = [segment for segment in self._segments[:-1] if segment.next_offset > self._log_start]
        if self._cleaned_to is None:
            cleaned_to = 0
            for segment in self._segments[:-1]:  # cleaned segments are a prefix of the log
                header = read_chain_header(segment.chain_path)
                if header is None or header.end_offset is None:
                    break
                cleaned_to = segment.next_offset
            self._cleaned_to = cleaned_to
        total = sum(segment.size for segment in sealed)
        dirty = sum(segment.size for segment in sealed if segment.next_offset > self._cleaned_to)
        return dirty / total if total else 0.0

    def plan_clean(self, now_ms: int, *, force: bool = False) -> CleanPlan | None:
        """What a clean of this log would rewrite, or None if it is not a compacted topic or (unless
        ``force``) too little of it is dirty. Cheap: reads two chain headers per group."""
        config = self._config
        if not config.compact or config.append_only or self._failure is not None or self._closed:
            return None
        if not force and self.dirty_ratio() < config.min_cleanable_dirty_ratio:
            return None
        runs: list[list[LogSegment]] = []
        stable = self.last_stable_offset  # undecided transactional records are not judged yet
        for segment in self._segments[:-1]:
            if segment.next_offset <= self._log_start:
                continue
            if segment.next_offset > stable:
                break
            run = runs[-1] if runs else None
            if (
                run is None
                or sum(member.size for member in run) + segment.size > config.segment_bytes
                or segment.next_offset - run[0].base_offset > INT32_MAX
            ):
                runs.append([segment])
            else:
                run.append(segment)
        groups: list[CleanGroup] = []
        for run in runs:
            header = read_chain_header(run[0].chain_path)
            link = last_hash_of(run[-1].chain_path)
            if header is None or link is None:
                log.error(
                    "%s: chain of segment %d unreadable; not compacting it",
                    self.directory,
                    run[0].base_offset,
                )
                return None
            sources = tuple(SourceSegment(m.base_offset, m.size, m.next_offset) for m in run)
            groups.append(CleanGroup(sources, header.anchor, link))
        if not groups:
            return None
        end = groups[-1].end_offset
        aborted = tuple(
            (entry.producer_id, entry.first_offset, entry.last_offset)
            for entry in self.aborted_transactions(self._log_start, end)
        )
        return CleanPlan(str(self.directory), tuple(groups), now_ms - config.delete_retention_ms, aborted)

    def install_clean(self, plan: CleanPlan, cleaned: list[CleanedGroup], now_ms: int) -> int:
        """Swap in what ``run_clean(plan)`` wrote (on the owner thread, after the worker finished).
        Groups whose segments changed meanwhile (retention, DeleteRecords) are dropped. Returns the
        number of records removed."""
        directory = self.directory
        config = self._config
        if self._closed or self._failure is not None or not config.compact or config.append_only:
            for group in cleaned:  # closed, or the topic's configs changed while the worker ran
                _delete_cleaned_files(directory, group.base)
            return 0
        sealed = {segment.base_offset: segment for segment in self._segments[:-1]}
        planned = {source.base: source for group in plan.groups for source in group.sources}
        valid: list[CleanedGroup] = []
        for group in cleaned:
            if all(base in sealed and sealed[base].size == planned[base].size for base in group.replaces):
                valid.append(group)
            else:
                _delete_cleaned_files(directory, group.base)
        try:
            commit_swap(directory, valid)
        except OSError as exc:
            # The manifest may be in place: the next open completes the swap. Until then the old
            # segments (some possibly deleted) cannot be trusted, so the log goes offline.
            self._failure = f"compaction swap failed: {exc}"
            raise StorageError(f"{directory}: {self._failure}") from exc
        interval = self._config.index_interval_bytes
        removed = 0
        for group in valid:
            first = self._bases.index(group.base)
            for old in self._segments[first : first + len(group.replaces)]:
                old.close()
            self._segments[first : first + len(group.replaces)] = [
                LogSegment.open_sealed(
                    directory,
                    group.base,
                    next_offset=group.end_offset,
                    now_ms=now_ms,
                    index_interval=interval,
                )
            ]
            self._bases[first : first + len(group.replaces)] = [group.base]
            merged = [e for base in group.replaces for e in self._aborted.pop(base, [])]  # as _swap_group did
            if merged:
                self._aborted[group.base] = merged
            removed += group.records_before - group.records_kept
            record_compaction(
                directory,
                segment=group.base,
                replaced=list(group.replaces),
                end_offset=group.end_offset,
                removed=group.records_before - group.records_kept,
                now_ms=now_ms,
            )
        if plan.groups:
            self._cleaned_to = max(self._cleaned_to or 0, plan.groups[-1].end_offset)
        return removed

    def compact(self, now_ms: int) -> list[CleanedGroup] | None:
        """Clean every sealed segment now, on this thread (tools and tests; the broker runs the
        cleaning itself in a worker process, see ``cleaner_jobs.py``). None if not a compacted topic."""
        plan = self.plan_clean(now_ms, force=True)
        if plan is None:
            return None
        cleaned = run_clean(plan)
        self.install_clean(plan, cleaned, now_ms)
        return cleaned

    # ----------------------------------------------------------------------------------------------
    # Closing

    def close(self, *, clean: bool = True) -> None:
        """Release the files. ``clean``: first fsync everything, seal the active segment's indexes, write
        a producer-state snapshot at the log end and persist the checkpoint, so the next open can skip
        recovery. ``clean=False`` just drops the descriptors, as a crash would."""
        if self._closed:
            return
        try:
            if clean and self._failure is None:
                self.flush()
                self._active_segment.seal()
                fsync_txn_index(self._active_segment.txn_index_path)
                end = self.log_end_offset
                offsets = snapshot_offsets(self.directory)
                if self._producers.changed or not offsets or offsets[-1] != end:
                    write_snapshot(self.directory, end, self._producers, keep_from=self._bases[-1])
                self._recovery_point = end
                self.checkpoint()
        finally:
            for segment in self._segments:
                segment.close()
            self._closed = True

    def __repr__(self) -> str:
        return f"PartitionLog({self.directory}, start={self._log_start}, end={self.log_end_offset})"


def _aborted_entry(state: ProducerStateManager, marker: BatchHeader, first_offset: int) -> AbortedTxn:
    """The index entry of the transaction an ABORT marker just closed (LSO as Kafka records it)."""
    first_unstable = state.first_unstable_offset()
    stable = marker.base_offset + 1 if first_unstable is None else first_unstable
    return AbortedTxn(marker.producer_id, first_offset, marker.base_offset, stable)


# --------------------------------------------------------------------------------------------------
# Files of a partition directory


def _read_checkpoint(directory: Path) -> tuple[int, int] | None:
    """(recovery point, log start offset), or None if missing or unreadable (then recover everything)."""
    try:
        data = json.loads((directory / CHECKPOINT_FILE).read_text())
        return int(data["recovery_point"]), int(data["log_start_offset"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _delete_segment_files(directory: Path, base_offset: int) -> None:
    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, CHAIN_SUFFIX, TXN_INDEX_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            (directory / segment_file_name(base_offset, suffix)).unlink()


def _delete_cleaned_files(directory: Path, base_offset: int) -> None:
    for suffix in (LOG_SUFFIX, CHAIN_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            (directory / (segment_file_name(base_offset, suffix) + CLEANED_SUFFIX)).unlink()


def _remove_leftovers_and_list_segments(directory: Path) -> list[int]:
    """Delete temporary files and indexes without a log; return the segment base offsets, ascending."""
    bases: list[int] = []
    index_files: list[tuple[int, Path]] = []
    for entry in os.scandir(directory):
        name = entry.name
        if name.endswith((TMP_SUFFIX, DELETED_SUFFIX)):
            Path(entry.path).unlink(missing_ok=True)
            continue
        stem, dot, suffix = name.partition(".")
        if not (dot and stem.isdigit()):
            continue
        if "." + suffix == LOG_SUFFIX:
            bases.append(int(stem))
        elif "." + suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX, CHAIN_SUFFIX, TXN_INDEX_SUFFIX):
            index_files.append((int(stem), Path(entry.path)))
    known = set(bases)
    for base, path in index_files:
        if base not in known:
            path.unlink(missing_ok=True)
    return sorted(bases)
