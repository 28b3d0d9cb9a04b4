"""Tamper evidence: every stored batch is chained, ``h_n = SHA-256(h_{n-1} || batch bytes as stored)``.

Files (beside the segments of a partition directory)::

    00000000000000000000.chain   8-byte magic, 32-byte anchor, then one 48-byte entry per batch:
                                 (base offset int64, position int32, size int32, hash 32 bytes)
    chain-recoveries.json        what crash recoveries (and chain rebuilds) did to the log (atomic)

The hashed bytes are the batch exactly as stored: after the broker patched its base offset (and,
for LogAppendTime topics, its timestamps and CRC), so anyone can recompute the chain from the
``.log`` files alone.

**One chain file per segment, anchored.** A segment's chain starts from its *anchor*: 32 zero bytes
for a partition's very first segment (base offset 0), otherwise the last hash of the previous segment.
Retention deletes whole oldest segments with their chain files; the first remaining segment's anchor
is then the (no longer recomputable) hash of everything deleted, so the rest still verifies from it.
What retention deleted is no longer provable except against a head exported earlier (see below).

**Compaction** rewrites sealed segments (``log_cleaner.py``), so their old hashes cannot survive. A
cleaned segment gets a fresh chain in a *compacted chain file* (magic ``RIELHCC1``) whose header holds,
besides its anchor (the link of the segment before it), two more fields: the *link*, the hash the next
segment was anchored on (the last hash of the segments it replaced, carried over from one compaction to
the next), and the *end offset* of the offset range it covers (a compacted segment may have lost its
last records, but its range still runs up to the next segment). So every segment-to-segment link still
verifies, later segments keep their chains untouched (heads exported after the compacted range still
check), and each compaction is recorded in ``chain-recoveries.json`` (kind ``compacted``: when, which
segments, how many records went). What a compacted segment no longer proves is what it held before
cleaning: an exported head inside it cannot be checked any more, and verify says so without failing.
Compaction is refused on append-only topics, so audit topics never lose that proof.

**Cost on the append path.** One ``hashlib.sha256`` per batch over bytes already in memory and one
``pwrite`` of the new entries; no reads. The active segment's chain is *not* fsync'ed with each flush:
it is derived data, fsync'ed when the segment is sealed (roll) or the log is cleanly closed. After a
crash, ``PartitionLog.open`` reconciles the active chain with the recovered log: entries past the log's
end are dropped (and that is recorded in ``chain-recoveries.json``), and batches the chain is missing
(a crash between the batch write and the chain write, or a chain page the kernel never wrote back) are
hashed from the CRC-checked log. That is the window in which a crash leaves valid but unchained data;
it only ever covers the unsealed tail. Fsync'ing the chain with every flush would double the fsyncs
under ``flush=always`` and prove nothing more: anyone able to rewrite the tail consistently can as well
rewrite its chain. What the chain does prove is stated next.

**What verification proves.** ``verify_partition`` recomputes every hash from the ``.log`` bytes and the
anchors, and compares them with the stored chains and the segment-to-segment links, so it names the
first offset of a flipped byte, a removed (middle) segment, a swapped or inserted batch, a truncation
(chain longer than the log) or an edited chain file. Someone with write access to the directory can of
course rewrite log *and* chains consistently; the defence against that is an exported head:
``(offset, hash)`` of a partition's last batch, kept elsewhere. Since each hash covers everything before
it, finding the same hash at the same offset later proves that nothing from the first retained anchor
up to that offset changed (SHA-256 collision resistance). A head that now lies past the log's end is a
truncation: explained if ``chain-recoveries.json`` records a crash recovery at or below it that cut
only data above the then persisted recovery point (data not yet fsync'ed, which a crash may take);
otherwise it is reported as tampering, so corrupting fsync'ed batches to make recovery cut them is
caught. A head below the first retained segment was removed by retention: it can no longer be
checked, and verify says so without failing. Export heads from durable data (a stopped server's
directory, or after a flush): a crash that loses unflushed batches exactly at a batch boundary, and
their chain entries with them, leaves nothing for recovery to record, so a head taken from those
batches would later be reported as an unexplained truncation.

**Logs written before chains existed** (no ``.chain`` files) get their chains built on the next open, by
hashing each unchained segment once (a one-time cost of a read of the log at SHA-256 speed), and a
"chain rebuilt" record goes into ``chain-recoveries.json`` so an auditor sees from when the chain vouches
for the data.

Plain synchronous file I/O, not thread-safe (one event-loop thread owns every storage object).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from riel.records.batch_header import LOG_OVERHEAD, MIN_BATCH_LENGTH, BatchHeader
from riel.storage.atomic_file import write_all, write_file_atomically

CHAIN_SUFFIX: Final = ".chain"
RECOVERIES_FILE: Final = "chain-recoveries.json"
ZERO_HASH: Final = bytes(32)
CHAIN_MAGIC: Final = b"RIELHC01"
HEADER_SIZE: Final = len(CHAIN_MAGIC) + 32
COMPACTED_MAGIC: Final = b"RIELHCC1"
_END_OFFSET: Final = struct.Struct(">q")
COMPACTED_HEADER_SIZE: Final = len(COMPACTED_MAGIC) + 32 + 32 + _END_OFFSET.size
ENTRY: Final = struct.Struct(">qii32s")  # base offset, position in the segment, batch size, hash
# baseOffset, batchLength, (partitionLeaderEpoch, magic, crc, attributes skipped), lastOffsetDelta.
_BATCH_OFFSETS: Final = struct.Struct(">qi11xi")


def chain_file_name(base_offset: int) -> str:
    return f"{base_offset:020d}{CHAIN_SUFFIX}"


@dataclass(frozen=True, slots=True)
class ChainHeader:
    """The header of a chain file. ``link``/``end_offset`` are set only for compacted segments."""

    anchor: bytes
    link: bytes | None  # the hash the next segment is anchored on
    end_offset: int | None  # the end of the offset range the segment covers
    size: int  # header bytes before the first entry


def parse_chain_header(data: bytes | memoryview) -> ChainHeader | None:
    """The header at the start of ``data``; None if it is neither kind of chain file or is cut short."""
    magic = bytes(data[: len(CHAIN_MAGIC)])
    if magic == CHAIN_MAGIC and len(data) >= HEADER_SIZE:
        return ChainHeader(bytes(data[len(CHAIN_MAGIC) : HEADER_SIZE]), None, None, HEADER_SIZE)
    if magic == COMPACTED_MAGIC and len(data) >= COMPACTED_HEADER_SIZE:
        start = len(COMPACTED_MAGIC)
        (end_offset,) = _END_OFFSET.unpack_from(data, start + 64)
        return ChainHeader(
            bytes(data[start : start + 32]),
            bytes(data[start + 32 : start + 64]),
            end_offset,
            COMPACTED_HEADER_SIZE,
        )
    return None


def write_compacted_chain(
    path: Path, anchor: bytes, link: bytes, end_offset: int, entries: list[tuple[int, int, int, bytes]]
) -> None:
    """Write and fsync the chain file of a cleaned segment (see "Compaction" above)."""
    data = bytearray(COMPACTED_MAGIC + anchor + link + _END_OFFSET.pack(end_offset))
    for entry in entries:
        data += ENTRY.pack(*entry)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def chain_hash(previous: bytes, batch: bytes | bytearray | memoryview) -> bytes:
    """``SHA-256(previous || batch)``."""
    h = hashlib.sha256(previous)
    h.update(batch)
    return h.digest()


# --------------------------------------------------------------------------------------------------
# The active segment's chain


class ChainWriter:
    """The open chain file of the active segment: appends entries, knows its last hash and end."""

    __slots__ = (
        "_fd",
        "anchor",
        "count",
        "end_position",
        "last_hash",
        "last_offset",
        "last_position",
        "path",
    )

    def __init__(self, path: Path, fd: int, anchor: bytes) -> None:
        self.path = path
        self._fd = fd
        self.anchor = anchor
        self.count = 0
        self.last_hash = anchor
        self.end_position = 0  # segment bytes covered by the chain
        self.last_offset = -1  # base offset of the last chained batch
        self.last_position = -1  # and its position in the segment

    @classmethod
    def create(cls, path: Path, anchor: bytes) -> ChainWriter:
        """A new chain file holding only its header (an existing file is replaced)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, CHAIN_MAGIC + anchor, 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, anchor)

    @classmethod
    def open_existing(cls, path: Path, segment_size: int) -> tuple[ChainWriter, int] | None:
        """Open a chain and cut it back to the entries that lie inside the first ``segment_size`` bytes.

        Returns (writer, entries dropped), or None if the file is missing or its header is damaged (or
        it is a compacted segment's chain, which is never appended to). Entries are found by binary
        search (a few preads), not by reading the whole file.
        """
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            header = os.pread(fd, HEADER_SIZE, 0)
            if len(header) != HEADER_SIZE or header[: len(CHAIN_MAGIC)] != CHAIN_MAGIC:
                os.close(fd)
                return None
            writer = cls(path, fd, header[len(CHAIN_MAGIC) :])
            stored = (os.fstat(fd).st_size - HEADER_SIZE) // ENTRY.size
            # Largest k such that entry k-1 ends inside the segment (entries are ordered by position).
            low, high = 0, stored
            while low < high:
                middle = (low + high + 1) // 2
                _, position, size, _ = writer._entry(middle - 1)
                if position + size <= segment_size:
                    low = middle
                else:
                    high = middle - 1
            keep = low
            if HEADER_SIZE + keep * ENTRY.size != os.fstat(fd).st_size:
                os.ftruncate(fd, HEADER_SIZE + keep * ENTRY.size)
            writer.count = keep
            if keep:
                offset, position, size, digest = writer._entry(keep - 1)
                writer.last_hash, writer.end_position = digest, position + size
                writer.last_offset, writer.last_position = offset, position
            return writer, stored - keep
        except BaseException:
            os.close(fd)
            raise

    def _entry(self, index: int) -> tuple[int, int, int, bytes]:
        data = os.pread(self._fd, ENTRY.size, HEADER_SIZE + index * ENTRY.size)
        if len(data) != ENTRY.size:
            raise OSError(f"{self.path}: entry {index} is torn")
        offset, position, size, digest = ENTRY.unpack(data)
        return offset, position, size, digest

    def append(self, data: bytes | bytearray | memoryview, headers: list[BatchHeader], position: int) -> None:
        """Chain the batches of ``data`` (whole batches, already patched) stored at ``position``."""
        view = memoryview(data)
        digest = self.last_hash
        out = bytearray()
        start = 0
        sha256 = hashlib.sha256
        pack = ENTRY.pack
        for header in headers:
            size = header.batch_length + LOG_OVERHEAD
            h = sha256(digest)
            h.update(view[start : start + size])
            digest = h.digest()
            out += pack(header.base_offset, position + start, size, digest)
            start += size
        last = headers[-1]
        self._write_entries(
            out,
            digest,
            position + start - last.batch_length - LOG_OVERHEAD,
            last.base_offset,
            len(headers),
            position + start,
        )

    def append_hashed(self, entries: list[tuple[int, int, int, bytes]]) -> None:
        """Add entries computed elsewhere (``hash_segment``)."""
        if not entries:
            return
        out = b"".join(ENTRY.pack(*entry) for entry in entries)
        offset, position, size, digest = entries[-1]
        self._write_entries(out, digest, position, offset, len(entries), position + size)

    def _write_entries(
        self,
        out: bytes | bytearray,
        digest: bytes,
        last_position: int,
        last_offset: int,
        count: int,
        end: int,
    ) -> None:
        write_all(self._fd, out, HEADER_SIZE + self.count * ENTRY.size)
        self.count += count
        self.last_hash = digest
        self.last_position = last_position
        self.last_offset = last_offset
        self.end_position = end

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def hash_segment(log_path: Path, start: int, end: int, previous: bytes) -> list[tuple[int, int, int, bytes]]:
    """Chain entries for the whole batches of ``log_path`` between byte ``start`` and ``end`` (both
    batch boundaries of a recovered segment)."""
    entries: list[tuple[int, int, int, bytes]] = []
    if end <= start:
        return entries
    with open(log_path, "rb") as file, mmap.mmap(file.fileno(), end, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            position = start
            while position + LOG_OVERHEAD <= end:
                offset, length, _ = _BATCH_OFFSETS.unpack_from(mapped, position)
                size = length + LOG_OVERHEAD
                if length < MIN_BATCH_LENGTH or position + size > end:
                    break
                previous = chain_hash(previous, view[position : position + size])
                entries.append((offset, position, size, previous))
                position += size
        finally:
            view.release()
    return entries


def last_hash_of(path: Path) -> bytes | None:
    """The hash the segment after this sealed one is anchored on: its chain's last hash (its anchor if
    it has no entries), or a compacted chain's link. None if unreadable."""
    try:
        with open(path, "rb") as file:
            header = parse_chain_header(file.read(COMPACTED_HEADER_SIZE))
            if header is None:
                return None
            if header.link is not None:
                return header.link
            size = os.fstat(file.fileno()).st_size
            count = (size - header.size) // ENTRY.size
            if count == 0:
                return header.anchor
            file.seek(header.size + (count - 1) * ENTRY.size)
            return bytes(ENTRY.unpack(file.read(ENTRY.size))[3])
    except (OSError, struct.error):
        return None


def read_chain_header(path: Path) -> ChainHeader | None:
    """The header of the chain file at ``path``; None if missing or unreadable."""
    try:
        with open(path, "rb") as file:
            return parse_chain_header(file.read(COMPACTED_HEADER_SIZE))
    except OSError:
        return None


def build_chain_file(path: Path, log_path: Path, size: int, anchor: bytes) -> bytes:
    """Write (and fsync) a complete chain for a sealed segment; returns its last hash."""
    writer = ChainWriter.create(path, anchor)
    try:
        writer.append_hashed(hash_segment(log_path, 0, size, anchor))
        writer.sync()
        return writer.last_hash
    finally:
        writer.close()


# --------------------------------------------------------------------------------------------------
# Recorded recoveries


def load_recoveries(directory: Path) -> list[dict[str, object]]:
    try:
        data = json.loads((directory / RECOVERIES_FILE).read_text())
        recoveries = data["recoveries"]
        return [r for r in recoveries if isinstance(r, dict)] if isinstance(recoveries, list) else []
    except (OSError, ValueError, KeyError, TypeError):
        return []


def record_recovery(
    directory: Path,
    *,
    segment: int,
    from_offset: int,
    reason: str,
    now_ms: int,
    truncated: bool,
    lost_durable: bool = False,
) -> None:
    """Append one record (atomic rewrite of the small file): from ``from_offset`` on, the log lost or
    had rebuilt what the chain said before. ``truncated``: batches were lost (otherwise the chain was
    only rebuilt from the log, which explains no missing data). ``lost_durable``: the lost part lay
    below the persisted recovery point, so it had been fsync'ed: a crash does not explain that (a
    failing disk or tampering does), and verify does not accept it as an explanation."""
    _append_record(
        directory,
        {
            "time_ms": now_ms,
            "segment": segment,
            "from_offset": from_offset,
            "kind": "truncated" if truncated else "chain-rebuilt",
            "lost_durable": lost_durable,
            "reason": reason,
        },
    )


def record_compaction(
    directory: Path, *, segment: int, replaced: list[int], end_offset: int, removed: int, now_ms: int
) -> None:
    """Record that ``replaced`` segments were compacted into ``segment`` (fresh chain, same links)."""
    _append_record(
        directory,
        {
            "time_ms": now_ms,
            "segment": segment,
            "from_offset": segment,
            "kind": "compacted",
            "replaced": replaced,
            "end_offset": end_offset,
            "records_removed": removed,
            "reason": f"compaction rewrote offsets {segment}..{end_offset - 1} (segments {replaced}), "
            f"removing {removed} record(s); the segment was chained afresh",
        },
    )


def _append_record(directory: Path, record: dict[str, object]) -> None:
    recoveries = load_recoveries(directory)
    recoveries.append(record)
    write_file_atomically(
        directory / RECOVERIES_FILE, json.dumps({"version": 1, "recoveries": recoveries}, indent=1).encode()
    )


# --------------------------------------------------------------------------------------------------
# Verification


@dataclass(slots=True)
class VerifyResult:
    """Outcome of ``verify_partition``. ``first_bad_offset``/``reason`` are set when ``ok`` is false."""

    ok: bool = True
    batches: int = 0
    size_bytes: int = 0
    segments: int = 0
    compacted_segments: int = 0
    first_bad_offset: int | None = None
    reason: str | None = None
    head_offset: int = -1  # base offset of the last batch; -1 for an empty partition
    head_hash: bytes = ZERO_HASH
    next_offset: int = 0
    notes: list[str] = field(default_factory=list)

    def fail(self, offset: int, reason: str) -> VerifyResult:
        self.ok = False
        self.first_bad_offset = offset
        self.reason = reason
        return self


def _segment_bases(directory: Path) -> list[int]:
    bases = []
    for path in directory.iterdir():
        stem, dot, suffix = path.name.partition(".")
        if dot and suffix == "log" and stem.isdigit():
            bases.append(int(stem))
    return sorted(bases)


def verify_partition(directory: Path, *, pinned: tuple[int, bytes] | None = None) -> VerifyResult:
    """Recompute the chain of every segment in ``directory`` from the ``.log`` bytes and compare it with
    the stored chains, the anchors' links and, if given, a ``pinned`` head (offset, hash).

    Read-only. The first mismatch stops the walk; its offset is the first offset (as the chain
    recorded it) where the log no longer matches.
    """
    result = VerifyResult()
    bases = _segment_bases(directory)
    recoveries = load_recoveries(directory)
    if recoveries:
        result.notes.append(f"{len(recoveries)} recorded recovery/rebuild event(s) in {RECOVERIES_FILE}")
    previous_hash: bytes | None = None
    expected_base: int | None = None
    pinned_seen = False
    for i, base in enumerate(bases):
        is_last = i == len(bases) - 1
        result.segments += 1
        try:
            chain = (directory / chain_file_name(base)).read_bytes()
        except FileNotFoundError:
            return result.fail(base, f"segment {base} has no chain file (written before hash chains?)")
        header = parse_chain_header(chain)
        if header is None:
            return result.fail(base, f"the chain file of segment {base} has a damaged header")
        if (len(chain) - header.size) % ENTRY.size:
            return result.fail(base, f"the chain file of segment {base} has a torn entry (edited?)")
        anchor = header.anchor
        compacted = header.end_offset is not None
        if expected_base is not None and base != expected_base:
            if base > expected_base:
                return result.fail(
                    expected_base, f"offsets {expected_base}..{base - 1} are missing (segment removed?)"
                )
            return result.fail(
                base, f"segment {base} overlaps the previous one, which ends at {expected_base}"
            )
        if previous_hash is None:
            if base == 0 and anchor != ZERO_HASH:
                return result.fail(0, "the first segment's anchor is not the chain origin (chain edited)")
            if base > 0:
                result.notes.append(f"chain anchored at offset {base} (earlier segments deleted)")
        elif anchor != previous_hash:
            return result.fail(
                base, f"segment {base}'s anchor does not match the previous segment's last hash"
            )
        entries = memoryview(chain)[header.size :]
        stored = len(entries) // ENTRY.size
        log_path = directory / f"{base:020d}.log"
        size = os.path.getsize(log_path)
        digest = anchor
        next_offset = base
        k = 0
        unchained = 0
        if size:
            with open(log_path, "rb") as file, mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    position = 0
                    sha256 = hashlib.sha256
                    while position < size:
                        expected = ENTRY.unpack_from(entries, k * ENTRY.size) if k < stored else None
                        where = expected[0] if expected is not None else next_offset
                        torn = size - position < _BATCH_OFFSETS.size
                        if not torn:
                            offset, length, last_delta = _BATCH_OFFSETS.unpack_from(mm, position)
                            batch_size = length + LOG_OVERHEAD
                            torn = length < MIN_BATCH_LENGTH or position + batch_size > size
                        if torn:
                            if is_last and expected is None:  # never chained: a write in progress or
                                result.notes.append(  # a crash that no open has recovered yet
                                    f"{size - position} byte(s) of an incomplete batch at the end of "
                                    f"segment {base} (a write in progress, or a crash not yet recovered)"
                                )
                                break
                            return result.fail(where, f"torn batch at byte {position} of segment {base}")
                        h = sha256(digest)
                        h.update(view[position : position + batch_size])
                        digest = h.digest()
                        if expected is None:
                            if not is_last:
                                return result.fail(
                                    offset, f"batch at {offset} is not in the chain (inserted?)"
                                )
                            unchained += 1
                        elif expected[3] != digest or expected[0] != offset:
                            return result.fail(
                                where,
                                f"batch at offset {where} differs from the chain (bytes changed, batches "
                                "removed, reordered or inserted, or the chain file edited)",
                            )
                        elif expected[1] != position or expected[2] != batch_size:
                            return result.fail(where, f"the chain entry of offset {where} was edited")
                        if offset < next_offset:
                            return result.fail(where, f"batch at offset {offset} is out of order")
                        if pinned is not None and offset == pinned[0]:
                            pinned_seen = True
                            if compacted:
                                result.notes.append(
                                    f"exported head {offset} lies in segment {base}, compacted since: "
                                    "it cannot be checked"
                                )
                            elif digest != pinned[1]:
                                return result.fail(
                                    offset,
                                    f"the hash at offset {offset} differs from the exported head: "
                                    f"something at or before offset {offset} changed",
                                )
                        next_offset = offset + last_delta + 1
                        result.head_offset, result.head_hash = offset, digest
                        result.batches += 1
                        result.size_bytes += batch_size
                        position += batch_size
                        k += 1
                finally:
                    view.release()
        if k < stored:
            missing = ENTRY.unpack_from(entries, k * ENTRY.size)[0]
            return result.fail(
                missing,
                f"the log ends before offset {missing} but the chain records {stored - k} more batch(es) "
                "(truncated)",
            )
        if unchained:
            result.notes.append(
                f"{unchained} batch(es) at the tail are not chained yet (a crash before the chain write, "
                "not reopened since; or a server is writing)"
            )
        if header.end_offset is not None and header.link is not None:
            if header.end_offset < next_offset:
                return result.fail(
                    base, f"compacted segment {base} holds offsets past the end its chain records"
                )
            result.compacted_segments += 1
            if pinned is not None and not pinned_seen and base <= pinned[0] < header.end_offset:
                pinned_seen = True
                result.notes.append(
                    f"exported head {pinned[0]} lay in segment {base}, compacted since: it cannot be checked"
                )
            previous_hash = header.link
            expected_base = header.end_offset
        else:
            previous_hash = digest
            expected_base = next_offset
    if result.compacted_segments:
        result.notes.append(
            f"{result.compacted_segments} compacted segment(s), chained afresh when cleaned "
            f"(see {RECOVERIES_FILE})"
        )
    result.next_offset = expected_base if expected_base is not None else 0
    if pinned is not None and not pinned_seen:
        offset = pinned[0]
        if bases and offset < bases[0]:
            result.notes.append(f"exported head {offset} was deleted by retention: it cannot be checked")
        elif offset >= result.next_offset:
            explained = [
                r
                for r in recoveries
                if r.get("kind") == "truncated"
                and r.get("lost_durable") is False
                and _as_int(r.get("from_offset")) <= offset
            ]
            if explained:
                result.notes.append(
                    f"exported head {offset} is past the log end {result.next_offset}: truncated by a "
                    f"recorded recovery ({explained[-1].get('reason')})"
                )
            else:
                return result.fail(
                    result.next_offset,
                    f"exported head {offset} is past the log end {result.next_offset}: truncated, and no "
                    "recorded recovery explains it",
                )
        else:
            return result.fail(offset, f"no batch starts at the exported head's offset {offset}")
    return result


def _as_int(value: object) -> int:
    """An int from a JSON value; unreadable values sort after every offset."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return 2**63
