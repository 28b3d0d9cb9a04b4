"""fast_records: the C path and the pure-Python fallback against record_codec (the reference path).

Every test body runs against both implementations (``IMPLS``); the C one comes straight from
``riel.records._speedups``. If the extension is missing, ``test_c_extension_is_built`` fails (unless
RIEL_NO_SPEEDUPS=1 says the fallback is intended) so that CI notices a lost fast path.
"""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riel.client.api import Message
from riel.errors import ErrorCode
from riel.records import fast_records, record_codec
from riel.records.errors import InvalidRecordError
from riel.records.fast_records import Item

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
NO_SPEEDUPS = os.environ.get("RIEL_NO_SPEEDUPS", "") not in ("", "0")


def _import_c() -> ModuleType | None:
    try:
        return importlib.import_module("riel.records._speedups")
    except ImportError:
        return None


_c = _import_c()


class Rec(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


class Impl(NamedTuple):
    name: str
    encode: Callable[..., tuple[bytes, int]]
    decode: Callable[..., list[Any]]


PY = Impl("python", fast_records.py_encode_records, fast_records.py_decode_records)
IMPLS = [pytest.param(PY, id="python")]
if _c is not None:
    C = Impl("c", _c.encode_records, _c.decode_records)
    IMPLS.append(pytest.param(C, id="c"))
ALL = [PY] + ([C] if _c is not None else [])


def test_c_extension_is_built() -> None:
    if NO_SPEEDUPS:
        assert not fast_records.SPEEDUPS
        assert fast_records.decode_records is fast_records.py_decode_records
        return
    assert _c is not None, "riel.records._speedups is not importable: the C fast path was not built"
    assert fast_records.SPEEDUPS
    assert fast_records.encode_records is _c.encode_records
    assert fast_records.decode_records is _c.decode_records


def test_env_var_forces_the_fallback() -> None:
    code = (
        "from riel.records import fast_records as f;"
        "assert not f.SPEEDUPS;"
        "assert f.encode_records is f.py_encode_records and f.decode_records is f.py_decode_records"
    )
    env = {**os.environ, "RIEL_NO_SPEEDUPS": "1"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


# --------------------------------------------------------------------------------------------------
# helpers


def reference_encode(items: Sequence[Item], base_timestamp: int) -> bytes:
    records = [
        record_codec.Record(0, timestamp, key, value, list(headers or []))
        for key, value, headers, timestamp in items
    ]
    return record_codec.encode_records(records, base_timestamp)


Outcome = tuple[str, Any]


def reference_decode(
    buf: bytes,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None,
    min_offset: int,
) -> Outcome:
    try:
        records = record_codec.decode_records(buf, count, base_offset, base_timestamp, log_append_time)
    except InvalidRecordError as e:
        assert e.code == ErrorCode.CORRUPT_MESSAGE
        return ("error", None)
    return (
        "ok",
        [
            ("t", 3, r.offset, r.timestamp, r.key, r.value, tuple(r.headers))
            for r in records
            if r.offset >= min_offset
        ],
    )


def decode_outcome(
    impl: Impl,
    buf: bytes | bytearray | memoryview,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None,
    min_offset: int,
    cls: type = Rec,
) -> Outcome:
    try:
        out = impl.decode(buf, count, base_offset, base_timestamp, log_append_time, "t", 3, min_offset, cls)
    except InvalidRecordError as e:
        assert e.code == ErrorCode.CORRUPT_MESSAGE
        return ("error", None)
    assert all(type(r) is cls for r in out)
    for r in out:
        assert type(r.key) in (bytes, type(None))
        assert type(r.value) in (bytes, type(None))
        assert type(r.headers) is tuple
    return ("ok", [tuple(r) for r in out])


def assert_all_agree(
    buf: bytes,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None,
    min_offset: int,
) -> Outcome:
    expected = reference_decode(buf, count, base_offset, base_timestamp, log_append_time, min_offset)
    for impl in ALL:
        got = decode_outcome(impl, buf, count, base_offset, base_timestamp, log_append_time, min_offset)
        assert got == expected, impl.name
    return expected


# --------------------------------------------------------------------------------------------------
# parity on valid records

fields = st.one_of(st.none(), st.just(b""), st.binary(max_size=64), st.binary(min_size=100, max_size=4000))
header_lists = st.one_of(
    st.none(),
    st.lists(st.tuples(st.text(max_size=12), st.one_of(st.none(), st.binary(max_size=40))), max_size=4),
)
int64s = st.integers(INT64_MIN, INT64_MAX)
base_timestamps = st.one_of(st.just(0), st.just(1_700_000_000_000), int64s)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Item], int]:
    base = draw(base_timestamps)
    near = st.integers(-20_000, 20_000).map(lambda d: min(max(base + d, INT64_MIN), INT64_MAX))
    anywhere = int64s.filter(lambda ts: INT64_MIN <= ts - base <= INT64_MAX)
    timestamps = st.one_of(near, anywhere)
    items: list[Item] = draw(st.lists(st.tuples(fields, fields, header_lists, timestamps), max_size=12))
    return items, base


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=batches(),
    base_offset=st.one_of(st.just(0), st.integers(0, INT64_MAX)),
    min_offset_delta=st.integers(-2, 14),
    log_append_time=st.one_of(st.none(), int64s),
)
def test_parity_with_reference(
    batch: tuple[list[Item], int], base_offset: int, min_offset_delta: int, log_append_time: int | None
) -> None:
    items, base = batch
    expected = reference_encode(items, base)
    max_timestamp = max((ts for *_, ts in items), default=-1)
    for impl in ALL:
        assert impl.encode(items, base) == (expected, max_timestamp), impl.name
    outcome = assert_all_agree(
        expected, len(items), base_offset, base, log_append_time, base_offset + min_offset_delta
    )
    assert outcome[0] == "ok"
    assert len(outcome[1]) == len([i for i in range(len(items)) if i >= min_offset_delta])


@pytest.mark.parametrize("impl", IMPLS)
def test_roundtrip_with_message(impl: Impl) -> None:
    items: list[Item] = [
        (None, b"v" * 100, None, 1_000),
        (b"k", None, [("h", b"x"), ("\u00e9t\u00e9", None)], 990),
        (b"", b"", [], 5_000),
    ]
    buf, max_ts = impl.encode(items, 1_000)
    assert max_ts == 5_000
    out = impl.decode(buf, 3, 42, 1_000, None, "topic", 7, 0, Message)
    assert out == [
        Message("topic", 7, 42, 1_000, None, b"v" * 100, ()),
        Message("topic", 7, 43, 990, b"k", None, (("h", b"x"), ("\u00e9t\u00e9", None))),
        Message("topic", 7, 44, 5_000, b"", b"", ()),
    ]
    assert all(type(m) is Message for m in out)
    assert out[0].time.year == 1970
    assert impl.decode(buf, 3, 42, 1_000, 77, "topic", 7, 44, Message) == [
        Message("topic", 7, 44, 77, b"", b"", ())
    ]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "size", [0, 1, 63, 64, 65, 127, 128, 8191, 8192, 8193, 16383, 16384, 70_000, 2_100_000]
)
def test_length_boundaries(impl: Impl, size: int) -> None:
    items: list[Item] = [(b"k" * size, b"v" * size, [("h" * (size % 300), b"x" * size)], 5)]
    buf, _ = impl.encode(items, 0)
    assert buf == reference_encode(items, 0)
    assert decode_outcome(impl, buf, 1, 0, 0, None, 0) == reference_decode(buf, 1, 0, 0, None, 0)


def test_many_records_and_large_offset_deltas() -> None:
    items: list[Item] = [(None, b"x" * (i % 7), None, 1_000 + i % 3) for i in range(9_000)]
    expected = reference_encode(items, 1_000)
    for impl in ALL:
        assert impl.encode(items, 1_000) == (expected, 1_002)
    assert_all_agree(expected, 9_000, 10, 1_000, None, 8_500)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_decode_accepts_buffers(impl: Impl, wrap: Callable[[bytes], Any]) -> None:
    buf, _ = impl.encode([(b"k", b"v", None, 1)], 0)
    assert impl.decode(wrap(buf), 1, 0, 0, None, "t", 0, 0, Rec) == [Rec("t", 0, 0, 1, b"k", b"v", ())]


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_into_plain_tuple(impl: Impl) -> None:
    buf, _ = impl.encode([(None, b"v", None, 1)], 0)
    out = impl.decode(buf, 1, 0, 0, None, "t", 0, 0, tuple)
    assert out == [("t", 0, 0, 1, None, b"v", ())]
    assert type(out[0]) is tuple


@pytest.mark.parametrize("impl", IMPLS)
def test_encode_accepts_other_sequences(impl: Impl) -> None:
    items = [(b"k", b"v", [("a", b"1")], 3)]
    expected = impl.encode(items, 0)
    assert impl.encode(tuple(items), 0) == expected
    assert impl.encode([(b"k", b"v", (("a", b"1"),), 3)], 0) == expected
    assert impl.encode([(b"k", b"v", [["a", b"1"]], 3)], 0) == expected
    assert impl.encode([], 0) == (b"", -1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("base_offset", "min_offset", "base_timestamp"),
    [
        (INT64_MAX, 0, INT64_MAX),
        (INT64_MAX - 1, INT64_MAX, 0),
        (1 << 70, 1 << 70, -(1 << 70)),
        (-(1 << 70), -(1 << 80), 1 << 80),
        (0, 1 << 70, 0),
        (0, -(1 << 70), 0),
    ],
)
def test_offsets_and_timestamps_beyond_int64(
    impl: Impl, base_offset: int, min_offset: int, base_timestamp: int
) -> None:
    buf = reference_encode([(None, b"v", None, 5), (None, None, None, -3), (b"k", None, None, 0)], 0)
    expected = reference_decode(buf, 3, base_offset, base_timestamp, None, min_offset)
    assert decode_outcome(impl, buf, 3, base_offset, base_timestamp, None, min_offset) == expected


# --------------------------------------------------------------------------------------------------
# argument errors: both paths raise the same exception types


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "item",
    [
        ("k", b"v", None, 0),
        (b"k", 5, None, 0),
        (b"k", bytearray(b"v"), None, 0),
        (None, None, [(b"bytes key", b"v")], 0),
        (None, None, [("k", "str value")], 0),
        (None, None, [("k",)], 0),
        (None, None, None, 1.5),
        (None, None, None, "0"),
        (None, None, None),
    ],
)
def test_encode_type_errors(impl: Impl, item: Any) -> None:
    with pytest.raises(TypeError):
        impl.encode([item], 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("timestamp", "base"),
    [(INT64_MAX + 1, 0), (INT64_MIN - 1, 0), (INT64_MAX, -1), (INT64_MIN, 1), (0, INT64_MAX + 1)],
)
def test_encode_overflow(impl: Impl, timestamp: int, base: int) -> None:
    with pytest.raises(OverflowError):
        impl.encode([(None, None, None, timestamp)], base)


@pytest.mark.parametrize("impl", IMPLS)
def test_encode_unencodable_header_key(impl: Impl) -> None:
    with pytest.raises(UnicodeEncodeError):
        impl.encode([(None, None, [("\ud800", None)], 0)], 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cls", [list, dict, object, "Rec"])
def test_decode_rejects_non_tuple_classes(impl: Impl, cls: Any) -> None:
    with pytest.raises(TypeError):
        impl.decode(b"", 0, 0, 0, None, "t", 0, 0, cls)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "args",
    [
        (5, 0, 0, 0, None),
        ("text", 0, 0, 0, None),
        (b"", 0.0, 0, 0, None),
        (b"", 0, "0", 0, None),
        (b"", 0, 0, None, None),
        (b"", 0, 0, 0, 1.5),
    ],
)
def test_decode_argument_type_errors(impl: Impl, args: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError):
        impl.decode(*args, "t", 0, 0, Rec)


# --------------------------------------------------------------------------------------------------
# malformed input: only InvalidRecordError, and the same verdict as the reference

valid_sections = batches().map(lambda b: (reference_encode(*b), len(b[0]), b[1]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=valid_sections,
    edits=st.lists(
        st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]), st.integers(0, 1 << 16)),
        min_size=1,
        max_size=4,
    ),
    count_change=st.sampled_from([0, 0, 0, -1, 1, 5]),
    log_append_time=st.one_of(st.none(), st.just(9)),
    min_offset=st.integers(-1, 4),
)
def test_fuzz_garbled_sections(
    section: tuple[bytes, int, int],
    edits: list[tuple[str, int]],
    count_change: int,
    log_append_time: int | None,
    min_offset: int,
) -> None:
    raw, count, base = section
    buf = bytearray(raw)
    for op, n in edits:
        at = n % (len(buf) + 1)
        if op == "flip" and at < len(buf):
            buf[at] ^= 1 << (n % 8)
        elif op == "set" and at < len(buf):
            buf[at] = (n >> 3) & 0xFF
        elif op == "insert":
            buf[at:at] = bytes([n & 0xFF])
        elif op == "delete" and at < len(buf):
            del buf[at]
        elif op == "truncate":
            del buf[at:]
    assert_all_agree(bytes(buf), count + count_change, 0, base, log_append_time, min_offset)


@settings(max_examples=400, deadline=None)
@given(buf=st.binary(max_size=200), count=st.integers(-1, 6), min_offset=st.integers(-1, 2))
def test_fuzz_random_bytes(buf: bytes, count: int, min_offset: int) -> None:
    assert_all_agree(buf, count, 0, 0, None, min_offset)


varint_bytes = st.lists(st.integers(0x80, 0xFF), max_size=9).flatmap(
    lambda prefix: st.integers(0, 0x7F).map(lambda last: bytes([*prefix, last]))
)


@settings(max_examples=400, deadline=None)
@given(
    fields=st.lists(
        st.one_of(varint_bytes, st.binary(max_size=3), st.sampled_from([b"\x00", b"\x01", b"\x02"])),
        max_size=10,
    ),
    use_length=st.booleans(),
)
def test_fuzz_records_built_from_varints(fields: list[bytes], use_length: bool) -> None:
    """Records assembled from arbitrary (long, overlong, huge) varints: more likely to get deep."""
    body = b"\x00" + b"".join(fields)
    prefix = bytearray()
    record_codec.write_varint(prefix, len(body))
    buf = bytes(prefix) + body if use_length else body
    for min_offset in (0, 1 << 70):
        assert_all_agree(buf, 1, 0, 0, None, min_offset)


def _record(*parts: bytes) -> bytes:
    body = b"".join(parts)
    out = bytearray()
    record_codec.write_varint(out, len(body))
    return bytes(out) + body


HUGE_POSITIVE = b"\xfe" + b"\xff" * 8 + b"\x7f"  # zigzag of a 70-bit unsigned: about +2**69
HUGE_NEGATIVE = b"\xff" * 9 + b"\x7f"  # about -2**69
INT64_MAX_VARINT = b"\xfe" + b"\xff" * 8 + b"\x01"
INT64_MIN_VARINT = b"\xff" + b"\xff" * 8 + b"\x01"


@pytest.mark.parametrize(
    ("name", "buf", "count"),
    [
        ("empty", b"", 0),
        ("empty with count", b"", 1),
        ("negative count", b"", -3),
        ("trailing byte", _record(b"\x00\x00\x00\x01\x01\x00") + b"\x00", 1),
        ("huge timestamp delta", _record(b"\x00", HUGE_POSITIVE, b"\x00\x01\x01\x00"), 1),
        ("huge negative timestamp delta", _record(b"\x00", HUGE_NEGATIVE, b"\x00\x01\x01\x00"), 1),
        ("int64 extremes", _record(b"\x00", INT64_MAX_VARINT, INT64_MIN_VARINT, b"\x01\x01\x00"), 1),
        ("huge offset delta", _record(b"\x00\x00", HUGE_POSITIVE, b"\x01\x01\x00"), 1),
        ("huge negative offset delta", _record(b"\x00\x00", HUGE_NEGATIVE, b"\x01\x01\x00"), 1),
        ("huge negative key length is null", _record(b"\x00\x00\x00", HUGE_NEGATIVE, b"\x01\x00"), 1),
        ("negative key length -5 is null", _record(b"\x00\x00\x00\x09\x01\x00"), 1),
        ("huge key length", _record(b"\x00\x00\x00", HUGE_POSITIVE, b"\x01\x00"), 1),
        ("key length 2**31", _record(b"\x00\x00\x00\x80\x80\x80\x80\x10\x01\x00"), 1),
        ("key length int64 max", _record(b"\x00\x00\x00", INT64_MAX_VARINT, b"\x01\x00"), 1),
        ("huge record length", HUGE_POSITIVE + b"\x00" * 20, 1),
        ("negative record length", b"\x01\x00\x00\x00\x01\x01\x00", 1),
        ("zero record length", b"\x00", 1),
        ("11-byte varint", _record(b"\x00", b"\x80" * 10 + b"\x00", b"\x00\x01\x01\x00"), 1),
        ("varint runs off the end", b"\x0c\x00\x80", 1),
        ("huge header count", _record(b"\x00\x00\x00\x01\x01", HUGE_POSITIVE), 1),
        ("negative header count", _record(b"\x00\x00\x00\x01\x01\x01"), 1),
        ("header count past end", _record(b"\x00\x00\x00\x01\x01\x04"), 1),
        ("null header key", _record(b"\x00\x00\x00\x01\x01\x02\x01\x01"), 1),
        ("non-UTF-8 header key", _record(b"\x00\x00\x00\x01\x01\x02\x02\xff\x01"), 1),
        ("surrogate header key", _record(b"\x00\x00\x00\x01\x01\x02\x06\xed\xa0\x80\x01"), 1),
        ("good header", _record(b"\x00\x00\x00\x01\x01\x02\x02a\x02b"), 1),
        ("header value runs past end", _record(b"\x00\x00\x00\x01\x01\x02\x02a\x04b"), 1),
        ("field varint overruns the record", _record(b"\x00\x00\x00\x01") + b"\x01\x00", 1),
        ("record shorter than its fields", b"\x02\x00\x00\x00\x01\x01\x00", 1),
        ("record longer than its fields", _record(b"\x00\x00\x00\x01\x01\x00\x00"), 1),
    ],
)
def test_crafted_inputs(name: str, buf: bytes, count: int) -> None:
    for min_offset in (0, 1, -(1 << 70), 1 << 70):
        for log_append_time in (None, 4):
            assert_all_agree(buf, count, 100, 1_000, log_append_time, min_offset)


# --------------------------------------------------------------------------------------------------
# C-path hygiene: references and buffer exports are given back, also on errors


@pytest.mark.parametrize("impl", IMPLS)
def test_buffer_released_and_no_reference_leaks(impl: Impl) -> None:
    good, _ = impl.encode([(b"k", b"v" * 100, [("h", b"x")], 7)] * 50, 0)
    bad = good[:-1]
    topic = "a-topic-name-not-interned-" + str(os.getpid())
    before = (sys.getrefcount(topic), sys.getrefcount(Rec))
    for _ in range(200):
        for buf in (good, bad):
            data = bytearray(buf)
            try:
                out = impl.decode(data, 50, 0, 0, None, topic, 0, 0, Rec)
            except InvalidRecordError:
                out = []
            data.extend(b"x")  # BufferError if the decoder still held its view
            del out
    gc.collect()
    assert (sys.getrefcount(topic), sys.getrefcount(Rec)) == before


@pytest.mark.parametrize("impl", IMPLS)
def test_records_are_tracked_by_gc(impl: Impl) -> None:
    buf, _ = impl.encode([(None, b"v", None, 0)], 0)
    (record,) = impl.decode(buf, 1, 0, 0, None, "t", 0, 0, Message)
    assert gc.is_tracked(record)
    # No headers: the shared empty tuple, which the GC does not track (half the tracked objects).
    assert record.headers == () and not gc.is_tracked(record.headers)
    buf, _ = impl.encode([(None, b"v", [("h", b"1")], 0)], 0)
    (record,) = impl.decode(buf, 1, 0, 0, None, "t", 0, 0, Message)
    assert record.headers == (("h", b"1"),)
