"""Log compaction (cleanup.policy=compact): keep the latest record per key in the sealed segments.

Kafka's algorithm, simplified where a single-node log allows it:

1. **Plan** (owner thread, cheap: ``PartitionLog.plan_clean``): the sealed segments (never the active
   one) at or above the log start, grouped into runs whose total size fits one segment, so that small
   cleaned segments merge over time; each group with the chain anchor and link it must keep.
2. **Clean** (``run_clean``; pure file work, run by a worker process so the broker's event loop and
   its GIL stay free): build the offset map ``key -> latest offset`` over every planned segment, then
   copy each group into ``<base>.log.cleaned``, keeping a record iff it is its key's latest, and not
   a tombstone (null value) older than ``delete.retention.ms`` by its timestamp. Records without a
   key are dropped (a topic switched to compaction may hold some; Kafka's cleaner drops them too).
   Batches are rewritten only when they lose records: kept records are copied as bytes, with their
   own offset and timestamp deltas, into a batch with the same base offset, last offset delta,
   producer fields and codec (recompressed), so **offsets never change** and a batch still covers the
   offsets it was given; a batch that loses every record disappears. Each cleaned file gets a compacted
   hash chain (``hash_chain.py``, "Compaction") in ``<base>.chain.cleaned``. Both are fsync'ed.
3. **Swap** (owner thread, ``commit_swap``): the commit point is ``cleaner-swap.json`` (atomic write)
   naming each group's replaced segments. Then the replaced segments' files are deleted, the cleaned
   chain and log are renamed over the group's first segment, and the manifest is removed. A crash
   before the manifest leaves only ``.cleaned`` files, which the next open deletes (the old segments
   are intact); a crash after it is completed by ``finish_interrupted_swap`` on the next open (each
   step is idempotent). Offset and time indexes of a cleaned segment are rebuilt on first use.

Memory: the offset map holds every distinct key of the planned segments (Kafka bounds it with
``log.cleaner.dedupe.buffer.size`` and cleans in several passes; Riel does one pass).

Transactions (as Kafka): only segments wholly below the last stable offset are cleaned, so no
undecided record is ever judged; records of aborted transactions are removed and never count as a
key's latest value; control batches (markers) are kept as they are, and a cleaned segment takes over
the aborted-transaction indexes of the segments it replaces.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from riel.records.batch import frame_batch
from riel.records.batch_header import BATCH_HEADER_SIZE, HEADER_STRUCT, BatchHeader
from riel.records.compression import decompress
from riel.records.fast_records import decode_records
from riel.records.record_codec import record_spans
from riel.storage.atomic_file import fsync_dir, write_all, write_file_atomically
from riel.storage.hash_chain import CHAIN_SUFFIX, chain_hash, write_compacted_chain
from riel.storage.txn_index import TXN_INDEX_SUFFIX, merge_txn_indexes

log = logging.getLogger(__name__)

CLEANED_SUFFIX: Final = ".cleaned"
SWAP_MANIFEST: Final = "cleaner-swap.json"
_LOG: Final = ".log"
_DERIVED: Final = (".index", ".timeindex")


def _name(base: int, suffix: str) -> str:
    return f"{base:020d}{suffix}"


# --------------------------------------------------------------------------------------------------
# Plans and results (JSON, so a worker process can take and return them)


@dataclass(frozen=True, slots=True)
class SourceSegment:
    base: int
    size: int
    next_offset: int


@dataclass(frozen=True, slots=True)
class CleanGroup:
    """Consecutive sealed segments cleaned into one file named by the first one's base offset."""

    sources: tuple[SourceSegment, ...]
    anchor: bytes  # the link of the segment before the group
    link: bytes  # what the segment after the group is anchored on (kept as it is)

    @property
    def base(self) -> int:
        return self.sources[0].base

    @property
    def end_offset(self) -> int:
        return self.sources[-1].next_offset


@dataclass(frozen=True, slots=True)
class CleanPlan:
    directory: str
    groups: tuple[CleanGroup, ...]
    delete_horizon_ms: int  # tombstones with a timestamp below this are dropped
    # (producer id, first offset, marker offset) of the aborted transactions in the planned range
    aborted: tuple[tuple[int, int, int], ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "directory": self.directory,
                "delete_horizon_ms": self.delete_horizon_ms,
                "aborted": [list(a) for a in self.aborted],
                "groups": [
                    {
                        "anchor": g.anchor.hex(),
                        "link": g.link.hex(),
                        "sources": [[s.base, s.size, s.next_offset] for s in g.sources],
                    }
                    for g in self.groups
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CleanPlan:
        data = json.loads(text)
        groups = tuple(
            CleanGroup(
                tuple(SourceSegment(int(b), int(s), int(n)) for b, s, n in g["sources"]),
                bytes.fromhex(g["anchor"]),
                bytes.fromhex(g["link"]),
            )
            for g in data["groups"]
        )
        aborted = tuple((int(p), int(f), int(m)) for p, f, m in data.get("aborted", []))
        return cls(str(data["directory"]), groups, int(data["delete_horizon_ms"]), aborted)


@dataclass(frozen=True, slots=True)
class CleanedGroup:
    """A group whose cleaned files are ready to swap in."""

    base: int
    replaces: tuple[int, ...]
    end_offset: int
    size: int
    bytes_before: int
    records_before: int
    records_kept: int

    def to_dict(self) -> dict[str, object]:
        return {
            "base": self.base,
            "replaces": list(self.replaces),
            "end_offset": self.end_offset,
            "size": self.size,
            "bytes_before": self.bytes_before,
            "records_before": self.records_before,
            "records_kept": self.records_kept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CleanedGroup:
        replaces = data["replaces"]
        assert isinstance(replaces, list)

        def number(name: str) -> int:
            value = data[name]
            assert isinstance(value, int)
            return value

        return cls(
            number("base"),
            tuple(int(base) for base in replaces),
            number("end_offset"),
            number("size"),
            number("bytes_before"),
            number("records_before"),
            number("records_kept"),
        )


# --------------------------------------------------------------------------------------------------
# Cleaning (worker side)


class _Rec(NamedTuple):  # the 7-field shape fast_records decodes into
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def _batches(mapped: mmap.mmap, size: int) -> list[tuple[int, BatchHeader]]:
    """(position, header) of every whole batch of a segment mapping."""
    out: list[tuple[int, BatchHeader]] = []
    position = 0
    while position + BATCH_HEADER_SIZE <= size:
        header = BatchHeader(*HEADER_STRUCT.unpack_from(mapped, position))
        if position + header.size > size:
            break
        out.append((position, header))
        position += header.size
    return out


def _segment_batches(directory: Path, source: SourceSegment) -> Iterator[tuple[mmap.mmap, int, BatchHeader]]:
    """(mapping, position, header) of every whole batch of a planned segment."""
    with (
        open(directory / _name(source.base, _LOG), "rb") as file,
        mmap.mmap(file.fileno(), source.size, access=mmap.ACCESS_READ) as mapped,
    ):
        for position, header in _batches(mapped, source.size):
            yield mapped, position, header


def _records(mapped: mmap.mmap, position: int, header: BatchHeader) -> tuple[bytes, list[_Rec]]:
    """(uncompressed records section, records with raw timestamps) of the batch at ``position``."""
    body = decompress(
        header.compression, memoryview(mapped)[position + BATCH_HEADER_SIZE : position + header.size]
    )
    records = decode_records(
        body, header.records_count, header.base_offset, header.base_timestamp, None, "", 0, 0, _Rec
    )
    return body, records


class _Aborted:
    """Which transactional batches belong to aborted transactions."""

    def __init__(self, aborted: tuple[tuple[int, int, int], ...]) -> None:
        self._ranges: dict[int, list[tuple[int, int]]] = {}
        for producer_id, first, marker in aborted:
            self._ranges.setdefault(producer_id, []).append((first, marker))

    def __contains__(self, header: BatchHeader) -> bool:
        if not header.is_transactional or header.is_control:
            return False
        ranges = self._ranges.get(header.producer_id)
        return ranges is not None and any(first <= header.base_offset < marker for first, marker in ranges)


def build_offset_map(
    directory: Path, segments: list[SourceSegment], aborted: _Aborted | None = None
) -> dict[bytes, int]:
    """``key -> offset of its latest record`` over ``segments`` (aborted records do not count)."""
    offsets: dict[bytes, int] = {}
    for source in segments:
        if not source.size:
            continue
        for mapped, position, header in _segment_batches(directory, source):
            if header.is_control or (aborted is not None and header in aborted):
                continue
            for record in _records(mapped, position, header)[1]:
                if record.key is not None:
                    offsets[record.key] = record.offset
    return offsets


def _keep(record: _Rec, offsets: dict[bytes, int], horizon: int) -> bool:
    key = record.key
    if key is None or offsets.get(key) != record.offset:
        return False
    return record.value is not None or record.timestamp >= horizon


def _clean_batch(
    mapped: mmap.mmap,
    position: int,
    header: BatchHeader,
    offsets: dict[bytes, int],
    horizon: int,
    aborted: _Aborted,
) -> tuple[bytes | bytearray | memoryview | None, int, int]:
    """(the batch as it is to be written or None if it goes, records before, records kept)."""
    whole = memoryview(mapped)[position : position + header.size]
    if header.is_control:
        return whole, 0, 0
    if header in aborted:
        return None, header.records_count, 0
    body, records = _records(mapped, position, header)
    if header.timestamp_type:  # LogAppendTime: every record's timestamp is the batch's
        records = [r._replace(timestamp=header.max_timestamp) for r in records]
    kept = [i for i, record in enumerate(records) if _keep(record, offsets, horizon)]
    if len(kept) == len(records):
        return whole, len(records), len(kept)
    if not kept:
        return None, len(records), 0
    spans = record_spans(body, header.records_count)
    section = b"".join(body[spans[i].start : spans[i].end] for i in kept)
    max_timestamp = header.max_timestamp if header.timestamp_type else max(records[i].timestamp for i in kept)
    batch = frame_batch(
        section,
        len(kept),
        header.base_timestamp,
        max_timestamp,
        base_offset=header.base_offset,
        compression=header.compression,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        is_transactional=header.is_transactional,
        partition_leader_epoch=header.partition_leader_epoch,
        last_offset_delta=header.last_offset_delta,
        log_append_time=bool(header.timestamp_type),
    )
    return batch, len(records), len(kept)


def clean_group(
    directory: Path,
    group: CleanGroup,
    offsets: dict[bytes, int],
    horizon: int,
    aborted: _Aborted | None = None,
) -> CleanedGroup | None:
    """Write the group's ``.cleaned`` log and chain; None (and nothing left on disk) when the group is
    one segment that would come out unchanged."""
    log_path = directory / (_name(group.base, _LOG) + CLEANED_SUFFIX)
    chain_path = directory / (_name(group.base, CHAIN_SUFFIX) + CLEANED_SUFFIX)
    entries: list[tuple[int, int, int, bytes]] = []
    digest = group.anchor
    written = 0
    records_before = records_kept = 0
    skip = aborted if aborted is not None else _Aborted(())
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for source in group.sources:
            if not source.size:
                continue
            for mapped, position, header in _segment_batches(directory, source):
                batch, before, kept = _clean_batch(mapped, position, header, offsets, horizon, skip)
                records_before += before
                records_kept += kept
                if batch is None:
                    continue
                digest = chain_hash(digest, batch)
                entries.append((header.base_offset, written, len(batch), digest))
                write_all(fd, batch, written)
                written += len(batch)
                if isinstance(batch, memoryview):
                    batch.release()
        unchanged = len(group.sources) == 1 and records_kept == records_before
        if not unchanged:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    if unchanged:
        log_path.unlink()
        return None
    write_compacted_chain(chain_path, group.anchor, group.link, group.end_offset, entries)
    return CleanedGroup(
        group.base,
        tuple(source.base for source in group.sources),
        group.end_offset,
        written,
        sum(source.size for source in group.sources),
        records_before,
        records_kept,
    )


def run_clean(plan: CleanPlan) -> list[CleanedGroup]:
    """Clean every group of ``plan``; the files are ready for ``commit_swap``."""
    directory = Path(plan.directory)
    sources = [source for group in plan.groups for source in group.sources]
    aborted = _Aborted(plan.aborted)
    offsets = build_offset_map(directory, sources, aborted)
    cleaned: list[CleanedGroup] = []
    try:
        for group in plan.groups:
            result = clean_group(directory, group, offsets, plan.delete_horizon_ms, aborted)
            if result is not None:
                cleaned.append(result)
    except BaseException:
        discard_cleaned(directory)
        raise
    return cleaned


# --------------------------------------------------------------------------------------------------
# Swapping in (owner side) and crash recovery


def discard_cleaned(directory: Path) -> None:
    """Delete every ``.cleaned`` file (a clean that never reached its commit point)."""
    for entry in os.scandir(directory):
        if entry.name.endswith(CLEANED_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _swap_group(directory: Path, base: int, replaces: list[int]) -> None:
    """Put one group's cleaned files in place of the segments it replaces; safe to repeat."""
    # The cleaned segment keeps the aborted transactions of all it replaces (markers are kept too).
    merge_txn_indexes(
        directory / _name(base, TXN_INDEX_SUFFIX),
        [directory / _name(old, TXN_INDEX_SUFFIX) for old in replaces],
    )
    for old in replaces:
        if old == base:
            continue
        for suffix in (_LOG, *_DERIVED, CHAIN_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                (directory / _name(old, suffix)).unlink()
    cleaned_log = directory / (_name(base, _LOG) + CLEANED_SUFFIX)
    if cleaned_log.exists():  # not yet renamed: the old indexes describe the old file
        for suffix in _DERIVED:
            with contextlib.suppress(FileNotFoundError):
                (directory / _name(base, suffix)).unlink()
    cleaned_chain = directory / (_name(base, CHAIN_SUFFIX) + CLEANED_SUFFIX)
    if cleaned_chain.exists():  # chain first: a log renamed without its chain would fail verify
        cleaned_chain.replace(directory / _name(base, CHAIN_SUFFIX))
    if cleaned_log.exists():
        cleaned_log.replace(directory / _name(base, _LOG))


def commit_swap(directory: Path, groups: list[CleanedGroup]) -> None:
    """Swap the cleaned groups in, crash-safely (the manifest is the commit point)."""
    if not groups:
        return
    manifest = [{"base": group.base, "replaces": list(group.replaces)} for group in groups]
    write_file_atomically(directory / SWAP_MANIFEST, json.dumps({"version": 1, "groups": manifest}).encode())
    for group in groups:
        _swap_group(directory, group.base, list(group.replaces))
    fsync_dir(directory)
    (directory / SWAP_MANIFEST).unlink()
    fsync_dir(directory)


def finish_interrupted_swap(directory: Path) -> bool:
    """At open: complete a swap whose manifest was committed, then drop the files of any clean that
    was not. True if anything changed."""
    changed = False
    manifest = directory / SWAP_MANIFEST
    try:
        data = json.loads(manifest.read_text())
    except FileNotFoundError:
        data = None
    except (OSError, ValueError) as exc:  # written atomically, so unreadable means a broken disk
        log.error(
            "%s: unreadable %s (%s); not completing the swap it describes", directory, SWAP_MANIFEST, exc
        )
        data = None
    if data is not None:
        for group in data.get("groups", []):
            _swap_group(directory, int(group["base"]), [int(b) for b in group["replaces"]])
        log.warning("%s: completed a compaction swap interrupted by a crash", directory)
        manifest.unlink()
        changed = True
    for entry in os.scandir(directory):
        if entry.name.endswith(CLEANED_SUFFIX):
            os.unlink(entry.path)
            changed = True
    if changed:
        fsync_dir(directory)
    return changed
