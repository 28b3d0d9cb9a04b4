"""A PartitionLog against a plain list: random appends, rolls, reads, DeleteRecords, clean and unclean
reopens and torn tails, with one idempotent producer whose retries must be recognised throughout."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from riel.errors import KafkaApiError, StorageError
from riel.records import Record, decode_batches, encode_batch, read_header
from riel.storage import PartitionLog

from .helpers import NOW_MS, open_log, read_all

CONFIGS = {"segment_bytes": 900, "index_interval_bytes": 120}
PID = 77
TIMESTAMPS = st.integers(NOW_MS, NOW_MS + 60)


@dataclass
class ProducerBatch:
    first_sequence: int
    count: int
    base_offset: int


class PartitionLogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="riel-model-"))
        self.plog: PartitionLog = open_log(self.directory, **CONFIGS)  # type: ignore[arg-type]
        self.values: list[bytes | None] = []  # index = offset; entries below the log start are stale
        self.timestamps: list[int] = []
        self.batches: list[tuple[int, int]] = []  # (base offset, record count) of every stored batch
        self.start = 0
        self.counter = 0
        self.next_sequence = 0
        self.producer_batches: list[ProducerBatch] = []

    def _batch_bytes(
        self, count: int, size: int, codec: int, timestamp: int, *, sequence: int = -1
    ) -> tuple[bytes, list[Record]]:
        # Timestamps wander up and down (clients' clocks do), so time lookups cannot assume order.
        records = []
        for i in range(count):
            self.counter += 1  # deterministic payloads: hypothesis replays must produce the same sizes
            records.append(Record(0, timestamp + i, None, (b"%d," % self.counter * size)[:size]))
        producer = (PID, 0, sequence) if sequence >= 0 else (-1, -1, -1)
        data = encode_batch(
            records,
            compression=codec,
            producer_id=producer[0],
            producer_epoch=producer[1],
            base_sequence=producer[2],
        )
        return data, records

    def _stored(self, base: int, records: list[Record]) -> None:
        assert base == len(self.values)
        self.batches.append((base, len(records)))
        self.values.extend(r.value for r in records)
        self.timestamps.extend(r.timestamp for r in records)

    @rule(
        shape=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 120), TIMESTAMPS), min_size=1, max_size=3),
        codec=st.sampled_from([0, 1, 4]),
    )
    def append(self, shape: list[tuple[int, int, int]], codec: int) -> None:
        request = bytearray()
        pieces = []
        for count, size, timestamp in shape:
            data, records = self._batch_bytes(count, size, codec, timestamp)
            request += data
            pieces.append(records)
        result = self.plog.append(request, NOW_MS)
        assert result.base_offset == len(self.values)
        for payloads in pieces:
            self._stored(len(self.values), payloads)
        assert result.last_offset == len(self.values) - 1

    @rule(count=st.integers(1, 4), size=st.integers(0, 80), timestamp=TIMESTAMPS)
    def produce_idempotent(self, count: int, size: int, timestamp: int) -> None:
        data, records = self._batch_bytes(count, size, 0, timestamp, sequence=self.next_sequence)
        result = self.plog.append(bytearray(data), NOW_MS)
        self.producer_batches.append(ProducerBatch(self.next_sequence, count, result.base_offset))
        self.next_sequence += count
        self._stored(result.base_offset, records)

    @precondition(lambda self: bool(self.producer_batches))
    @rule(back=st.integers(0, 4))
    def retry_recent_batch(self, back: int) -> None:
        batch = self.producer_batches[-1 - min(back, len(self.producer_batches) - 1)]
        data, _ = self._batch_bytes(batch.count, 10, 0, NOW_MS, sequence=batch.first_sequence)
        end = self.plog.high_watermark
        result = self.plog.append(bytearray(data), NOW_MS)
        assert (result.base_offset, result.last_offset) == (
            batch.base_offset,
            batch.base_offset + batch.count - 1,
        )
        assert self.plog.high_watermark == end

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        before = data.draw(st.integers(self.start, len(self.values)))
        assert self.plog.delete_records(before) == before
        self.start = before

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        self.plog.close(clean=clean)
        self.plog = open_log(self.directory, clean_shutdown=clean, **CONFIGS)  # type: ignore[arg-type]

    @rule(where=st.integers(0, 10**6))
    def crash_with_torn_tail(self, where: int) -> None:
        """Kill during the write of the last batch: any proper prefix of it may be on disk."""
        self.plog.close(clean=False)
        active = max(self.directory.glob("*.log"))
        content = active.read_bytes()
        if content:
            position = 0
            while position + read_header(content, position).size < len(content):
                position += read_header(content, position).size
            cut = position + where % (len(content) - position)
            os.truncate(active, cut)
            base, _ = self.batches.pop()
            assert base == read_header(content, position).base_offset
            del self.values[base:]
            del self.timestamps[base:]
            if self.start > base:  # DeleteRecords had moved past the lost batch: restart empty there
                self.values.extend([None] * (self.start - base))
                self.timestamps.extend([-1] * (self.start - base))
            if self.producer_batches and self.producer_batches[-1].base_offset == base:
                lost = self.producer_batches.pop()
                self.next_sequence = lost.first_sequence  # the client retries the lost sequences
        self.plog = open_log(self.directory, clean_shutdown=False, **CONFIGS)  # type: ignore[arg-type]

    @rule(data=st.data(), max_bytes=st.integers(1, 2500), min_one=st.booleans())
    def read_somewhere(self, data: st.DataObject, max_bytes: int, min_one: bool) -> None:
        if self.start == len(self.values):
            assert self.plog.read(self.start, max_bytes) is None
            return
        offset = data.draw(st.integers(self.start, len(self.values) - 1))
        chunk = self.plog.read(offset, max_bytes, min_one=min_one)
        if chunk is None:
            assert not min_one
            return
        with chunk:
            batches = decode_batches(chunk.read_bytes())
        assert sum(header.size for header, _ in batches) == chunk.size
        assert chunk.size <= max_bytes or len(batches) == 1
        first = batches[0][0]
        assert first.base_offset <= offset <= first.last_offset
        for _, records in batches:
            for record in records:
                assert record.value == self.values[record.offset]
                assert record.timestamp == self.timestamps[record.offset]

    @rule()
    def read_everything(self) -> None:
        records = read_all(self.plog)
        assert [r.offset for r in records] == list(range(self.start, len(self.values)))
        assert [r.value for r in records] == self.values[self.start :]

    @rule(data=st.data())
    def find_by_timestamp(self, data: st.DataObject) -> None:
        live = [(offset, ts) for offset, ts in enumerate(self.timestamps) if offset >= self.start]
        if not live:
            assert self.plog.offset_for_timestamp(0) is None
            assert self.plog.max_timestamp() == (-1, -1)
            return
        target = data.draw(st.integers(NOW_MS - 2, NOW_MS + 70))
        expected = next(((offset, ts) for offset, ts in live if ts >= target), None)
        assert self.plog.offset_for_timestamp(target) == expected
        largest = max(ts for _, ts in live)
        assert self.plog.max_timestamp() == next((offset, ts) for offset, ts in live if ts == largest)

    @invariant()
    def offsets_match(self) -> None:
        assert self.plog.high_watermark == len(self.values)
        assert self.plog.log_start_offset == self.start

    def teardown(self) -> None:
        with contextlib.suppress(KafkaApiError, StorageError):
            self.plog.close(clean=False)
        shutil.rmtree(self.directory, ignore_errors=True)


PartitionLogModel.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPartitionLogModel = PartitionLogModel.TestCase
