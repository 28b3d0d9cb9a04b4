"""Compress and decompress the records section of a batch, in the framings Kafka clients use.

Only tools, tests and the SDK call this: the broker stores and serves compressed batches as they came.
The codec libraries are optional and imported on first use, so the broker itself does not need them.

Framings (what Kafka's Java client writes and every client reads):
- gzip: a gzip member (RFC 1952).
- snappy: the xerial "snappy-java" stream: a 16-byte header then [int32 length][raw snappy block]...;
  readers also accept one raw snappy block, which some clients (librdkafka, older Go) send.
- lz4: the LZ4 frame format with independent blocks (Kafka's reader keeps no dictionary between blocks).
- zstd: zstd frames, possibly without a content size, possibly several concatenated.
"""

from __future__ import annotations

import enum
import gzip
import importlib
import struct
import zlib
from collections.abc import Callable
from typing import Any, Final

from riel.errors import ErrorCode
from riel.records.errors import InvalidRecordError


class Compression(enum.IntEnum):
    """Codec ids as stored in bits 0-2 of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


_XERIAL_MAGIC: Final = b"\x82SNAPPY\x00"
_XERIAL_HEADER: Final = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)  # version 1, compatible with 1
_XERIAL_BLOCK: Final = 32 * 1024  # snappy-java's default block size
_BLOCK_LENGTH: Final = struct.Struct(">i")
# Decompressing a peer's bytes must not let a tiny zip bomb allocate unbounded memory.
MAX_DECOMPRESSED_BYTES: Final = 256 * 1024 * 1024

_PACKAGES: Final = {
    Compression.SNAPPY: ("cramjam", "cramjam (or python-snappy)"),
    Compression.LZ4: ("lz4.frame", "lz4"),
    Compression.ZSTD: ("zstandard", "zstandard"),
}


def _module(codec: Compression) -> Any:
    name, package = _PACKAGES[codec]
    try:
        return importlib.import_module(name)
    except ImportError:
        if codec is Compression.SNAPPY:
            try:
                return importlib.import_module("snappy")
            except ImportError:
                pass
        raise InvalidRecordError(
            ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
            f"{codec.name.lower()} needs the optional package {package}: pip install {package.split()[0]}",
        ) from None


def compress(codec: int, data: bytes) -> bytes:
    """``data`` compressed with ``codec`` in Kafka's framing for it."""
    codec = Compression(codec)
    if codec is Compression.NONE:
        return data
    if codec is Compression.GZIP:
        return gzip.compress(data)
    if codec is Compression.SNAPPY:
        return _snappy_xerial_compress(data)
    if codec is Compression.LZ4:
        return bytes(_module(codec).compress(data, block_linked=False))
    return bytes(_module(codec).ZstdCompressor().compress(data))


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Inverse of ``compress``; ``InvalidRecordError(CORRUPT_MESSAGE)`` on bytes the codec rejects."""
    try:
        codec = Compression(codec)
    except ValueError:
        raise InvalidRecordError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown codec {codec}") from None
    if codec is Compression.NONE:
        return bytes(data)
    # Import before the try: a missing library is UNSUPPORTED_COMPRESSION_TYPE, not corrupt data.
    module: Any = _module(codec) if codec in (Compression.LZ4, Compression.ZSTD) else None
    try:
        if codec is Compression.GZIP:
            out = _gunzip(data)
        elif codec is Compression.SNAPPY:
            out = _snappy_decompress(bytes(data))
        elif codec is Compression.LZ4:
            out = bytes(module.decompress(bytes(data)))
        else:
            out = _zstd_decompress(module, bytes(data))
    except InvalidRecordError:
        raise
    except Exception as exc:  # each library has its own error types; all mean "not valid input"
        raise InvalidRecordError(
            ErrorCode.CORRUPT_MESSAGE, f"{codec.name.lower()} data does not decompress: {exc}"
        ) from None
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise _too_big()
    return out


def _too_big() -> InvalidRecordError:
    return InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "decompressed records exceed the safety limit")


def _gunzip(data: bytes | memoryview) -> bytes:
    # wbits=47 accepts gzip or zlib headers; max_length stops a zip bomb before it fills memory.
    inflater = zlib.decompressobj(47)
    out = inflater.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    if inflater.unconsumed_tail:
        raise _too_big()
    if not inflater.eof:
        raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "truncated gzip data")
    return out


def _snappy_codec() -> tuple[Callable[[bytes], Any], Callable[[bytes], Any]]:
    """(compress_raw, decompress_raw) from cramjam, or from python-snappy when only that is installed."""
    module = _module(Compression.SNAPPY)
    if module.__name__ == "cramjam":
        return module.snappy.compress_raw, module.snappy.decompress_raw
    return module.compress, module.decompress


def _snappy_xerial_compress(data: bytes) -> bytes:
    compress_raw, _ = _snappy_codec()
    out = bytearray(_XERIAL_HEADER)
    view = memoryview(data)
    for start in range(0, len(data), _XERIAL_BLOCK):
        block = bytes(compress_raw(bytes(view[start : start + _XERIAL_BLOCK])))
        out += _BLOCK_LENGTH.pack(len(block))
        out += block
    return bytes(out)


def _snappy_decompress(data: bytes) -> bytes:
    _, decompress_raw = _snappy_codec()
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(decompress_raw(data))
    # Version and compat fields are ignored on purpose: some producers write them little-endian.
    out = bytearray()
    pos = len(_XERIAL_HEADER)
    while pos < len(data):
        if pos + 4 > len(data):
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "truncated xerial snappy block length")
        (length,) = _BLOCK_LENGTH.unpack_from(data, pos)
        pos += 4
        if length < 0 or pos + length > len(data):
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "xerial snappy block runs past the data")
        out += decompress_raw(data[pos : pos + length])
        pos += length
        if len(out) > MAX_DECOMPRESSED_BYTES:
            raise _too_big()
    return bytes(out)


def _zstd_decompress(module: Any, data: bytes) -> bytes:
    # Streaming, because producers (Kafka's zstd-jni among them) may omit the content size in the frame
    # header, which the one-shot API requires.
    decompressor = module.ZstdDecompressor()
    out = bytearray()
    while data:
        obj = decompressor.decompressobj()
        out += obj.decompress(data)
        if len(out) > MAX_DECOMPRESSED_BYTES:
            raise _too_big()
        if not obj.eof:
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "truncated zstd frame")
        data = obj.unused_data
    return bytes(out)
