"""The "black box" model: one PartitionLog against a plain list of records, through appends, rolls,
retention, compaction, crashes (torn or garbled tails, lost chain pages) and clean/unclean reopens,
with the hash chain verified after every step.

The model is the list of live records (offset, key, value, timestamp) plus the log start and end
offsets. Reading the log back must give exactly those records; ``verify_partition`` must report an
intact chain ending at the log end, and an exported head must keep verifying: retention deleting it,
compaction rewriting its segment and a recorded crash recovery cutting it are noted, not failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from riel.errors import KafkaApiError, StorageError
from riel.records import Record, decode_batches, encode_batch, read_header
from riel.records.batch_header import BATCH_HEADER_SIZE
from riel.storage import PartitionLog
from riel.storage.atomic_file import write_file_atomically
from riel.storage.hash_chain import read_chain_header, verify_partition
from riel.storage.log_cleaner import CLEANED_SUFFIX, SWAP_MANIFEST, _swap_group, run_clean

from .helpers import NOW_MS, open_log

KEYS = [b"k%d" % i for i in range(6)]
RETENTION_MS = 10_000
RETENTION_BYTES = 2_500
DELETE_RETENTION_MS = 3_000
# Record timestamps are drawn around the clock, mostly in the past, so that both retention.ms and the
# tombstone horizon (delete.retention.ms) are crossed now and then.
TIMESTAMP_DELTAS = st.integers(-14_000, 2_000)
# Bytes of a stored batch a crash may garble: the length, the magic, the CRC and everything the CRC
# covers. The base offset and partition leader epoch are outside the CRC: garbage there is not a torn
# write but tampering, which is the chain's business (tests/storage/test_hash_chain.py), not recovery's.
GARBLE_POSITIONS = [*range(8, 12), 16]  # plus every position >= 17
# One produce request: one or two batches (uncompressed or gzip) of 1-4 records, each given as
# (key index, tombstone?, timestamp - now, value size).
RECORD = st.tuples(st.integers(0, len(KEYS) - 1), st.booleans(), TIMESTAMP_DELTAS, st.integers(0, 40))
REQUEST = st.lists(
    st.tuples(st.lists(RECORD, min_size=1, max_size=4), st.sampled_from([0, 1])), min_size=1, max_size=2
)


@dataclass(frozen=True, slots=True)
class Entry:
    offset: int
    key: bytes
    value: bytes | None
    timestamp: int


def log_path(directory: Path, base: int, suffix: str = ".log") -> Path:
    return directory / f"{base:020d}{suffix}"


def batch_layout(content: bytes) -> list[tuple[int, int, int]]:
    """(position, size, base offset) of every whole batch of a segment file."""
    layout = []
    position = 0
    while len(content) - position >= BATCH_HEADER_SIZE:
        header = read_header(content, position)
        if position + header.size > len(content):
            break
        layout.append((position, header.size, header.base_offset))
        position += header.size
    return layout


class BlackBoxModel(RuleBasedStateMachine):
    """cleanup.policy=compact,delete: retention and compaction both apply."""

    CONFIGS: ClassVar[dict[str, str | int]] = {
        "segment_bytes": 700,
        "index_interval_bytes": 100,
        "cleanup_policy": "compact,delete",
        "retention_ms": RETENTION_MS,
        "retention_bytes": RETENTION_BYTES,
        "delete_retention_ms": DELETE_RETENTION_MS,
    }

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="riel-blackbox-"))
        self.now = NOW_MS
        self.plog: PartitionLog = self._open(clean=False)
        self.records: list[Entry] = []  # live records, ascending offsets (compaction leaves gaps)
        self.start = 0
        self.end = 0
        self.counter = 0
        self.pinned: tuple[int, bytes] | None = None  # an exported head still expected to verify

    def _open(self, *, clean: bool) -> PartitionLog:
        return open_log(self.directory, clean_shutdown=clean, now_ms=self.now, **self.CONFIGS)  # type: ignore[arg-type]

    @property
    def compacted(self) -> bool:
        return "compact" in str(self.CONFIGS["cleanup_policy"])

    @property
    def deletes(self) -> bool:
        return "delete" in str(self.CONFIGS["cleanup_policy"])

    def _drop_below(self, start: int) -> None:
        self.start = start
        self.records = [entry for entry in self.records if entry.offset >= start]

    # ----------------------------------------------------------------------------------------------
    # Writing

    @rule(requests=st.lists(REQUEST, min_size=1, max_size=4))
    def append(self, requests: list[list[tuple[list[tuple[int, bool, int, int]], int]]]) -> None:
        """Up to four produce requests, each of one or two batches of 1-4 keyed records."""
        for batches in requests:
            request = bytearray()
            pieces: list[list[Record]] = []
            for shape, codec in batches:
                records = []
                for key, tombstone, delta, size in shape:
                    self.counter += 1  # deterministic payloads: replays must produce the same sizes
                    value = None if tombstone else (b"v%d;" % self.counter * size)[: max(size, 1)]
                    records.append(Record(0, self.now + delta, KEYS[key], value))
                request += encode_batch(records, compression=codec)
                pieces.append(records)
            result = self.plog.append(request, self.now)
            assert result.base_offset == self.end
            for records in pieces:
                for record in records:
                    self.records.append(Entry(self.end, record.key or b"", record.value, record.timestamp))
                    self.end += 1
            assert result.last_offset == self.end - 1

    @precondition(lambda self: self.plog.log_end_offset > self.plog.segment_base_offsets()[-1])
    @rule()
    def roll(self) -> None:
        # There is no public roll: the private one is what a size or time roll calls. Rolling an empty
        # active segment would recreate it at the same base offset, so the rule needs a non-empty one.
        self.plog._roll(self.now)
        assert self.plog.segment_base_offsets()[-1] == self.end

    @rule(ms=st.sampled_from([0, 500, 2_000, 5_000, 12_000]))
    def advance_clock(self, ms: int) -> None:
        self.now += ms

    @rule()
    def flush(self) -> None:
        self.plog.flush()
        assert self.plog.recovery_point == self.end

    # ----------------------------------------------------------------------------------------------
    # Removing

    def _segment_max_timestamps(self, bases: list[int]) -> list[int]:
        """Largest model timestamp per segment (-1 for a segment without live records)."""
        bounds = [*bases[1:], self.end]
        return [
            max((e.timestamp for e in self.records if low <= e.offset < high), default=-1)
            for low, high in zip(bases, bounds, strict=True)
        ]

    @rule()
    def apply_retention(self) -> None:
        bases = self.plog.segment_base_offsets()
        sizes = [log_path(self.directory, base).stat().st_size for base in bases]
        limit = self.now - RETENTION_MS
        newest = self._segment_max_timestamps(bases)
        # Kafka's rules, from the model's timestamps: a wholly expired active segment is rolled first;
        # then the oldest segments go while their newest record is expired, then while the log exceeds
        # retention.bytes by at least a whole oldest segment; never the active one.
        if self.deletes and sizes[-1] and 0 <= newest[-1] < limit:
            bases, sizes, newest = [*bases, self.end], [*sizes, 0], [*newest, -1]
        doomed = 0
        if self.deletes:
            while doomed + 1 < len(bases) and newest[doomed] < limit:
                doomed += 1
            excess = sum(sizes[doomed:]) - RETENTION_BYTES
            while doomed + 1 < len(bases) and excess - sizes[doomed] >= 0:
                excess -= sizes[doomed]
                doomed += 1
        deleted = self.plog.apply_retention(self.now)
        assert deleted == doomed
        event(f"retention deleted {min(doomed, 2)}+ segment(s)" if doomed else "retention deleted nothing")
        assert self.plog.segment_base_offsets() == bases[doomed:]  # whole oldest segments only
        new_start = max(self.start, bases[doomed])
        assert self.plog.log_start_offset == new_start
        self._drop_below(new_start)

    def _model_compact(self, active: int) -> int:
        """Apply a compaction of everything below ``active`` to the model; the records removed."""
        horizon = self.now - DELETE_RETENTION_MS
        latest: dict[bytes, int] = {}
        for entry in self.records:
            if entry.offset < active:
                latest[entry.key] = entry.offset
        before = len(self.records)
        self.records = [
            entry
            for entry in self.records
            if entry.offset >= active
            or (latest[entry.key] == entry.offset and not (entry.value is None and entry.timestamp < horizon))
        ]
        return before - len(self.records)

    @rule()
    def compact(self) -> None:
        active = self.plog.segment_base_offsets()[-1]
        result = self.plog.compact(self.now)
        if not self.compacted:
            assert result is None
            return
        if result is None:
            event("compact: nothing sealed to clean")
        removed = self._model_compact(active)
        event(f"compact: removed {'some' if removed else 'no'} records")
        assert sum(group.records_before - group.records_kept for group in result or []) == removed
        assert self.plog.log_start_offset == self.start
        assert self.plog.log_end_offset == self.end

    @precondition(lambda self: self.compacted)
    @rule(committed=st.booleans(), swapped=st.integers(0, 10), half=st.booleans())
    def crash_while_compacting(self, committed: bool, swapped: int, half: bool) -> None:
        """Kill the process during a compaction: after the worker wrote the ``.cleaned`` files but before
        the swap's commit point (the old segments stay), or after the manifest was written with
        ``swapped`` groups swapped in (and, with ``half``, the next one half-way: other replaced
        segments gone and its chain renamed, not yet its log); the next open completes the swap.
        The steps of ``commit_swap``/``_swap_group`` are replayed here to stop between them."""
        active = self.plog.segment_base_offsets()[-1]
        plan = self.plog.plan_clean(self.now, force=True)
        cleaned = run_clean(plan) if plan is not None else []
        if committed and cleaned:
            manifest = [{"base": group.base, "replaces": list(group.replaces)} for group in cleaned]
            data = json.dumps({"version": 1, "groups": manifest}).encode()
            write_file_atomically(self.directory / SWAP_MANIFEST, data)
            for group in cleaned[:swapped]:
                _swap_group(self.directory, group.base, list(group.replaces))
            if half and swapped < len(cleaned):
                group = cleaned[swapped]
                for old in group.replaces[1:]:
                    for suffix in (".log", ".index", ".timeindex", ".chain"):
                        log_path(self.directory, old, suffix).unlink(missing_ok=True)
                chain = log_path(self.directory, group.base, ".chain")
                chain.with_name(chain.name + CLEANED_SUFFIX).replace(chain)
        self.plog.close(clean=False)
        self.plog = self._open(clean=False)
        if committed and cleaned:
            removed = self._model_compact(active)
            assert sum(group.records_before - group.records_kept for group in cleaned) == removed
        event(f"crash while compacting: {'after' if committed and cleaned else 'before'} the commit point")
        assert not list(self.directory.glob("*" + CLEANED_SUFFIX))
        assert not (self.directory / SWAP_MANIFEST).exists()

    # ----------------------------------------------------------------------------------------------
    # Closing, crashing, reopening

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        self.plog.close(clean=clean)
        self.plog = self._open(clean=clean)

    @rule(
        damage=st.sampled_from(["none", "truncate", "garble"]),
        which=st.integers(0, 10**6),
        where=st.integers(0, 10**6),
        garbage=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4),
        chain_cut=st.one_of(st.none(), st.integers(0, 10**6)),
    )
    def crash(
        self,
        damage: str,
        which: int,
        where: int,
        garbage: list[tuple[int, int]],
        chain_cut: int | None,
    ) -> None:
        """Kill the process: batches not yet fsync'ed (at or above the recovery point, all in the
        active segment) may be torn or hold garbage, and the active segment's chain (fsync'ed only at
        roll and clean close) may have lost any suffix of its pages.

        A torn log is always cut strictly inside a batch (so recovery sees the damage and records it):
        a cut exactly at a batch boundary together with a lost chain tail would leave nothing to
        record, and a head exported from the lost batch could then not be told from tampering."""
        durable = self.plog.recovery_point
        active = self.plog.segment_base_offsets()[-1]
        assert durable >= active, "everything in sealed segments is fsync'ed"
        self.plog.close(clean=False)
        path = log_path(self.directory, active)
        content = path.read_bytes()
        exposed = [b for b in batch_layout(content) if b[2] >= durable]
        cut = self.end
        if damage != "none" and exposed:
            position, size, cut = exposed[which % len(exposed)]
            if damage == "truncate":  # strictly inside the batch: a torn write
                os.truncate(path, position + 1 + where % (size - 1))
            else:
                data = bytearray(content)
                allowed = [*GARBLE_POSITIONS, *range(17, size)]
                for spot, xor in garbage:
                    data[position + allowed[spot % len(allowed)]] ^= xor
                path.write_bytes(bytes(data))
        if chain_cut is not None:
            chain = log_path(self.directory, active, ".chain")
            os.truncate(chain, chain_cut % (chain.stat().st_size + 1))
        self.plog = self._open(clean=False)
        assert self.plog.log_end_offset == cut, "recovery must cut exactly at the first damaged batch"
        assert self.plog.segment_base_offsets()[-1] == active
        event(f"crash: {'lost a tail' if cut < self.end else 'lost nothing'}")
        self.records = [entry for entry in self.records if entry.offset < cut]
        self.end = cut
        if self.pinned is not None and self.pinned[0] >= cut:
            result = verify_partition(self.directory, pinned=self.pinned)
            assert result.ok, result.reason
            assert any("recorded recovery" in note for note in result.notes), result.notes
            event("pinned head cut by a crash")
            self.pinned = None  # its offsets will be reused by the next appends

    # ----------------------------------------------------------------------------------------------
    # Checking

    @precondition(lambda self: self.end > self.start)
    @rule(durable=st.booleans())
    def export_head(self, durable: bool) -> None:
        if durable:
            self.plog.flush()
        result = verify_partition(self.directory)
        assert result.ok, result.reason
        if result.head_offset < 0:
            return  # compaction removed every batch
        assert result.head_offset >= self.start
        self.pinned = (result.head_offset, result.head_hash)

    @rule(max_bytes=st.sampled_from([1, 300, 1 << 20]))
    def read_everything(self, max_bytes: int) -> None:
        got = [(r.offset, r.key, r.value, r.timestamp) for r in self._read_all(max_bytes)]
        assert got == [(e.offset, e.key, e.value, e.timestamp) for e in self.records]

    def _read_all(self, max_bytes: int) -> list[Record]:
        """Every record from the log start, via ``read`` slices. Unlike helpers.read_all, a None below
        the log end is allowed when compaction emptied the rest of the log (Kafka answers such a fetch
        with no records too); the comparison with the model then shows whether records were skipped."""
        offset = self.start
        records: list[Record] = []
        while offset < self.plog.high_watermark:
            chunk = self.plog.read(offset, max_bytes)
            if chunk is None:
                break
            with chunk:
                decoded = decode_batches(chunk.read_bytes())
            assert decoded, "a read slice must hold at least one whole batch"
            assert decoded[-1][0].next_offset > offset, "reads must make progress"
            for header, batch_records in decoded:
                records.extend(r for r in batch_records if r.offset >= offset)
                offset = header.next_offset
        return records

    @invariant()
    def offsets_match(self) -> None:
        assert self.plog.log_start_offset == self.start
        assert self.plog.log_end_offset == self.end
        assert self.plog.high_watermark == self.end
        assert self.plog.segment_base_offsets()[0] <= self.start

    def _compacted_segment_holding(self, offset: int) -> bool:
        bases = self.plog.segment_base_offsets()
        holder = max(base for base in bases if base <= offset)
        header = read_chain_header(log_path(self.directory, holder, ".chain"))
        assert header is not None
        return header.end_offset is not None

    @invariant()
    def chain_verifies(self) -> None:
        result = verify_partition(self.directory)
        assert result.ok, (result.first_bad_offset, result.reason)
        assert result.next_offset == self.end
        if self.pinned is not None:
            pinned = verify_partition(self.directory, pinned=self.pinned)
            assert pinned.ok, (pinned.first_bad_offset, pinned.reason)
            if self.pinned[0] < self.plog.segment_base_offsets()[0]:
                assert any("retention" in note for note in pinned.notes), pinned.notes
                event("pinned head deleted by retention")
            elif self._compacted_segment_holding(self.pinned[0]):
                # A rewritten segment is chained afresh: heads inside it cannot be checked any more
                # (a segment that compaction left unchanged keeps its chain, and the head still checks).
                assert any("compacted since" in note for note in pinned.notes), pinned.notes
                event("pinned head compacted")

    def teardown(self) -> None:
        with contextlib.suppress(KafkaApiError, StorageError):
            self.plog.close(clean=False)
        shutil.rmtree(self.directory, ignore_errors=True)


class CompactOnlyModel(BlackBoxModel):
    """cleanup.policy=compact: retention never deletes anything, compaction does."""

    CONFIGS: ClassVar[dict[str, str | int]] = {**BlackBoxModel.CONFIGS, "cleanup_policy": "compact"}


class DeleteOnlyModel(BlackBoxModel):
    """cleanup.policy=delete (the default): compact() is a no-op returning None."""

    CONFIGS: ClassVar[dict[str, str | int]] = {**BlackBoxModel.CONFIGS, "cleanup_policy": "delete"}


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


BlackBoxModel.TestCase.settings = _settings(100)
CompactOnlyModel.TestCase.settings = _settings(60)
DeleteOnlyModel.TestCase.settings = _settings(40)
TestBlackBoxModel = BlackBoxModel.TestCase
TestCompactOnlyModel = CompactOnlyModel.TestCase
TestDeleteOnlyModel = DeleteOnlyModel.TestCase
