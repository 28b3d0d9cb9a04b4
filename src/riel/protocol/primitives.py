"""Kafka's primitive wire types: a bounds-checked reader and an appending writer.

Every read checks bounds and raises ``ProtocolError``: this is what guarantees that a peer's bytes can
never raise anything else out of the decoders built on top (see ``schema.py``).
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from riel.errors import ProtocolError

_I8: Final = struct.Struct(">b")
_I16: Final = struct.Struct(">h")
_U16: Final = struct.Struct(">H")
_I32: Final = struct.Struct(">i")
_U32: Final = struct.Struct(">I")
_I64: Final = struct.Struct(">q")
_F64: Final = struct.Struct(">d")

ZERO_UUID: Final = uuid.UUID(int=0)


class Reader:
    """Reads Kafka primitives from a buffer; slices are zero-copy memoryviews."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf = memoryview(data) if not isinstance(data, memoryview) else data
        self.pos = pos
        self.end = len(self.buf) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def _take(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > self.end:
            raise ProtocolError(f"need {n} bytes at position {start}, only {self.end - start} left")
        self.pos = start + n
        return start

    def int8(self) -> int:
        return int(_I8.unpack_from(self.buf, self._take(1))[0])

    def boolean(self) -> bool:
        return self.int8() != 0

    def int16(self) -> int:
        return int(_I16.unpack_from(self.buf, self._take(2))[0])

    def uint16(self) -> int:
        return int(_U16.unpack_from(self.buf, self._take(2))[0])

    def int32(self) -> int:
        return int(_I32.unpack_from(self.buf, self._take(4))[0])

    def uint32(self) -> int:
        return int(_U32.unpack_from(self.buf, self._take(4))[0])

    def int64(self) -> int:
        return int(_I64.unpack_from(self.buf, self._take(8))[0])

    def float64(self) -> float:
        return float(_F64.unpack_from(self.buf, self._take(8))[0])

    def uuid(self) -> uuid.UUID:
        start = self._take(16)
        return uuid.UUID(bytes=bytes(self.buf[start : start + 16]))

    def uvarint(self) -> int:
        result = 0
        shift = 0
        while True:
            byte = self.buf[self._take(1)]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 28:
                raise ProtocolError("unsigned varint is longer than 5 bytes")

    def varint(self) -> int:
        raw = self.uvarint()
        return (raw >> 1) ^ -(raw & 1)

    def varlong(self) -> int:
        result = 0
        shift = 0
        while True:
            byte = self.buf[self._take(1)]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise ProtocolError("varlong is longer than 10 bytes")

    def raw(self, n: int) -> memoryview:
        start = self._take(n)
        return self.buf[start : start + n]

    def _text(self, n: int) -> str:
        try:
            return str(self.raw(n), "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"string is not valid UTF-8: {exc}") from None

    # Classic (non-flexible) encodings: int16/int32 length, -1 means null.
    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            if n == -1:
                return None
            raise ProtocolError(f"negative string length {n}")
        return self._text(n)

    def bytes_(self) -> memoryview | None:
        n = self.int32()
        if n < 0:
            if n == -1:
                return None
            raise ProtocolError(f"negative bytes length {n}")
        return self.raw(n)

    def array_length(self) -> int | None:
        n = self.int32()
        if n < 0:
            if n == -1:
                return None
            raise ProtocolError(f"negative array length {n}")
        self._check_count(n)
        return n

    # Compact (flexible) encodings: uvarint length + 1, 0 means null.
    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self._text(n)

    def compact_bytes(self) -> memoryview | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.raw(n)

    def compact_array_length(self) -> int | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        self._check_count(n)
        return n

    def _check_count(self, n: int) -> None:
        # Every element takes at least one byte, so a count above the bytes left is a lie; refusing
        # it here stops a 4-byte frame from making us allocate a list of two billion entries.
        if n > self.end - self.pos:
            raise ProtocolError(f"array claims {n} elements but only {self.end - self.pos} bytes remain")


class ExternalBytes:
    """Bytes that the encoder does not copy: the transport sends them itself (``sendfile``).

    The protocol layer only needs the size; the server knows how to send the concrete subclass.
    """

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


class Writer:
    """Appends Kafka primitives to ``buf``.

    An ``ExternalBytes`` value is not copied: ``external`` closes the current chunk into ``parts`` and
    appends the external value after it, so the result is a list of chunks (see ``chunks``).
    """

    __slots__ = ("buf", "parts")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.parts: list[bytes | bytearray | ExternalBytes] = []

    def external(self, value: ExternalBytes) -> None:
        if self.buf:
            self.parts.append(self.buf)
            self.buf = bytearray()
        self.parts.append(value)

    def chunks(self) -> list[bytes | bytearray | ExternalBytes]:
        """All output in order; plain bytes when nothing external was written."""
        if not self.parts:
            return [self.buf]
        return [*self.parts, self.buf] if self.buf else list(self.parts)

    def size(self) -> int:
        return len(self.buf) + sum(len(p) for p in self.parts)

    def int8(self, v: int) -> None:
        self.buf += _I8.pack(v)

    def boolean(self, v: bool) -> None:
        self.buf.append(1 if v else 0)

    def int16(self, v: int) -> None:
        self.buf += _I16.pack(v)

    def uint16(self, v: int) -> None:
        self.buf += _U16.pack(v)

    def int32(self, v: int) -> None:
        self.buf += _I32.pack(v)

    def uint32(self, v: int) -> None:
        self.buf += _U32.pack(v)

    def int64(self, v: int) -> None:
        self.buf += _I64.pack(v)

    def float64(self, v: float) -> None:
        self.buf += _F64.pack(v)

    def uuid(self, v: uuid.UUID | None) -> None:
        self.buf += (v or ZERO_UUID).bytes

    def uvarint(self, v: int) -> None:
        buf = self.buf
        while v >= 0x80:
            buf.append((v & 0x7F) | 0x80)
            v >>= 7
        buf.append(v)

    def varint(self, v: int) -> None:
        self.uvarint(((v << 1) ^ (v >> 31)) & 0xFFFFFFFF)

    def varlong(self, v: int) -> None:
        self.uvarint(((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)

    def raw(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data

    def string(self, v: str | None) -> None:
        if v is None:
            self.int16(-1)
            return
        data = v.encode()
        self.int16(len(data))
        self.buf += data

    def bytes_(self, v: bytes | bytearray | memoryview | None) -> None:
        if v is None:
            self.int32(-1)
            return
        self.int32(len(v))
        self.buf += v

    def compact_string(self, v: str | None) -> None:
        if v is None:
            self.uvarint(0)
            return
        data = v.encode()
        self.uvarint(len(data) + 1)
        self.buf += data

    def compact_bytes(self, v: bytes | bytearray | memoryview | None) -> None:
        if v is None:
            self.uvarint(0)
            return
        self.uvarint(len(v) + 1)
        self.buf += v
