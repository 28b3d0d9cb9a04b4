"""A small declarative language for Kafka message schemas, and the codec compiled from it.

Each API is described once (``riel.protocol.apis``) the way Kafka's own message definitions describe it:
fields with the versions they exist in, nullable versions, and tagged fields for flexible versions. From
that single description we compile, per (schema, version), a decoder ``Reader -> dict`` and an encoder
``(Writer, dict) -> None``. Messages are plain dicts keyed by snake_case field names, so a handler reads
``request["topics"]`` and builds a response as nested dicts; fields a handler leaves out take their
schema default. Compilation happens once per version, so the per-message cost is a walk over closures.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from riel.errors import ProtocolError
from riel.protocol.primitives import ExternalBytes, Reader, Writer

Message = dict[str, Any]
Decoder = Callable[[Reader], Any]
Encoder = Callable[[Writer, Any], None]

MAX_VERSION: Final = 0x7FFF


@dataclass(frozen=True, slots=True)
class Versions:
    """An inclusive version range; ``none`` is empty."""

    low: int
    high: int

    @classmethod
    def parse(cls, spec: str | None) -> Versions:
        if spec is None or spec == "none":
            return cls(1, 0)
        if spec.endswith("+"):
            return cls(int(spec[:-1]), MAX_VERSION)
        if "-" in spec:
            low, high = spec.split("-")
            return cls(int(low), int(high))
        return cls(int(spec), int(spec))

    def __contains__(self, version: object) -> bool:
        return isinstance(version, int) and self.low <= version <= self.high


class Type:
    """A wire type. Subclasses supply readers and writers for the classic and compact encodings."""

    name = "?"

    def decoder(self, version: int, flexible: bool, nullable: bool) -> Decoder:
        raise NotImplementedError

    def encoder(self, version: int, flexible: bool, nullable: bool) -> Encoder:
        raise NotImplementedError

    def default(self) -> Any:
        raise NotImplementedError


class _Fixed(Type):
    def __init__(
        self, name: str, read: Callable[[Reader], Any], write: Callable[[Writer, Any], None], default: Any
    ) -> None:
        self.name = name
        self._read = read
        self._write = write
        self._default = default

    def decoder(self, version: int, flexible: bool, nullable: bool) -> Decoder:
        return self._read

    def encoder(self, version: int, flexible: bool, nullable: bool) -> Encoder:
        return self._write

    def default(self) -> Any:
        return self._default


INT8: Final = _Fixed("int8", Reader.int8, Writer.int8, 0)
INT16: Final = _Fixed("int16", Reader.int16, Writer.int16, 0)
UINT16: Final = _Fixed("uint16", Reader.uint16, Writer.uint16, 0)
INT32: Final = _Fixed("int32", Reader.int32, Writer.int32, 0)
INT64: Final = _Fixed("int64", Reader.int64, Writer.int64, 0)
FLOAT64: Final = _Fixed("float64", Reader.float64, Writer.float64, 0.0)
BOOL: Final = _Fixed("bool", Reader.boolean, Writer.boolean, False)
UUID: Final = _Fixed("uuid", Reader.uuid, Writer.uuid, uuid.UUID(int=0))


class _String(Type):
    name = "string"

    def decoder(self, version: int, flexible: bool, nullable: bool) -> Decoder:
        return Reader.compact_string if flexible else Reader.string

    def encoder(self, version: int, flexible: bool, nullable: bool) -> Encoder:
        write = Writer.compact_string if flexible else Writer.string
        if nullable:
            return write

        def write_not_null(w: Writer, v: str | None) -> None:
            write(w, "" if v is None else v)

        return write_not_null

    def default(self) -> Any:
        return ""


class _Bytes(Type):
    """Opaque bytes. Decoded as a zero-copy memoryview into the frame."""

    name = "bytes"

    def decoder(self, version: int, flexible: bool, nullable: bool) -> Decoder:
        return Reader.compact_bytes if flexible else Reader.bytes_

    def encoder(self, version: int, flexible: bool, nullable: bool) -> Encoder:
        write = Writer.compact_bytes if flexible else Writer.bytes_
        if nullable:
            return write

        def write_not_null(w: Writer, v: bytes | None) -> None:
            write(w, b"" if v is None else v)

        return write_not_null

    def default(self) -> Any:
        return b""


class _Records(_Bytes):
    """A record set: bytes on the wire, but the encoder may be handed ``ExternalBytes`` (sendfile)."""

    name = "records"

    def encoder(self, version: int, flexible: bool, nullable: bool) -> Encoder:
        write = super().encoder(version, flexible, nullable)

        def write_records(w: Writer, v: Any) -> None:
            if isinstance(v, ExternalBytes):
                if flexible:
                    w.uvarint(v.size + 1)
                else:
                    w.int32(v.size)
                w.external(v)
            else:
                write(w, v)

        return write_records

    def default(self) -> Any:
        return None


STRING: Final = _String()
BYTES: Final = _Bytes()
RECORDS: Final = _Records()


UNSET: Final = "<type default>"


# Field and Array compare and hash by identity (eq=False): schemas are built once at import, and
# identity hashing is what lets ``compile_struct`` cache on a tuple of fields holding lists.
@dataclass(frozen=True, eq=False)
class Field:
    """One field of a message or nested struct.

    ``type`` is a ``Type``, an ``Array`` or a list of ``Field`` (a nested struct). ``versions`` and
    ``nullable`` use Kafka's notation ("3+", "0-4", "none"). A field with ``tag`` is a tagged field in
    every flexible version of ``versions`` (Kafka's ``taggedVersions``, which equals ``versions`` in
    every definition Riel uses), and is not written at all in other versions.
    """

    name: str
    type: Type | Array | list[Field]
    versions: str = "0+"
    nullable: str | None = None
    tag: int | None = None
    default: Any = UNSET  # the type's default (0, "", [], ...); None means null

    @property
    def version_range(self) -> Versions:
        return Versions.parse(self.versions)

    def default_value(self) -> Any:
        if isinstance(self.default, str) and self.default == UNSET:
            return _type_default(self.type)
        return copy.copy(self.default)


@dataclass(frozen=True, eq=False)
class Array:
    element: Type | list[Field]


def _type_default(t: Type | Array | list[Field]) -> Any:
    if isinstance(t, Array):
        return []
    if isinstance(t, list):
        return {f.name: f.default_value() for f in t}
    return t.default()


def _decoder_for(
    t: Type | Array | list[Field], version: int, flexible: bool, nullable: bool, name: str = "?"
) -> Decoder:
    if isinstance(t, list):
        return compile_struct(tuple(t), version, flexible)[0]
    if isinstance(t, Array):
        element = _decoder_for(t.element, version, flexible, False, f"element of {name}")
        length = Reader.compact_array_length if flexible else Reader.array_length

        def read_array(r: Reader) -> list[Any] | None:
            n = length(r)
            if n is None:
                return None
            return [element(r) for _ in range(n)]

        return read_array if nullable else _reject_null(read_array, name, version)
    read = t.decoder(version, flexible, nullable)
    return read if nullable or not isinstance(t, _String | _Bytes) else _reject_null(read, name, version)


def _reject_null(read: Decoder, name: str, version: int) -> Decoder:
    # Kafka refuses a null where the schema does not allow one ("non-nullable field was serialized as
    # null"); so do we, so that handlers can trust a str to be a str and a list to be a list.
    def read_not_null(r: Reader) -> Any:
        value = read(r)
        if value is None:
            raise ProtocolError(f"{name} is null, which version {version} does not allow")
        return value

    return read_not_null


def _encoder_for(t: Type | Array | list[Field], version: int, flexible: bool, nullable: bool) -> Encoder:
    if isinstance(t, list):
        return compile_struct(tuple(t), version, flexible)[1]
    if isinstance(t, Array):
        element = _encoder_for(t.element, version, flexible, False)

        def write_array(w: Writer, v: Sequence[Any] | None) -> None:
            if v is None:
                if nullable:
                    w.uvarint(0) if flexible else w.int32(-1)
                    return
                v = ()
            if flexible:
                w.uvarint(len(v) + 1)
            else:
                w.int32(len(v))
            for item in v:
                element(w, item)

        return write_array
    return t.encoder(version, flexible, nullable)


@dataclass(frozen=True)
class _CompiledField:
    name: str
    read: Decoder
    write: Encoder
    default: Callable[[], Any]
    tag: int | None


@cache
def compile_struct(fields: tuple[Field, ...], version: int, flexible: bool) -> tuple[Decoder, Encoder]:
    """Build the decoder and encoder of a struct at one version. Cached: compile once, run many."""
    present: list[_CompiledField] = []
    tagged: dict[int, _CompiledField] = {}
    absent: list[tuple[str, Callable[[], Any]]] = []
    for f in fields:
        default_factory = f.default_value
        if version not in f.version_range:
            absent.append((f.name, default_factory))
            continue
        nullable = version in Versions.parse(f.nullable)
        compiled = _CompiledField(
            f.name,
            _decoder_for(f.type, version, flexible, nullable, f.name),
            _encoder_for(f.type, version, flexible, nullable),
            default_factory,
            f.tag,
        )
        if f.tag is not None:
            if flexible:
                tagged[f.tag] = compiled
            else:
                absent.append((f.name, default_factory))
        else:
            present.append(compiled)
    regular = tuple((c.name, c.read) for c in present)
    regular_writers = tuple((c.name, c.write, c.default) for c in present)
    tagged_sorted = tuple(sorted(tagged.values(), key=lambda c: c.tag or 0))
    absent_t = tuple(absent)

    def decode(r: Reader) -> Message:
        msg: Message = {}
        for name, read in regular:
            msg[name] = read(r)
        for name, factory in absent_t:
            msg[name] = factory()
        for c in tagged_sorted:
            msg[c.name] = c.default()
        if flexible:
            _read_tagged(r, msg, tagged)
        return msg

    def encode(w: Writer, msg: Message) -> None:
        for name, write, default in regular_writers:
            value = msg.get(name, _ABSENT)
            write(w, default() if value is _ABSENT else value)
        if flexible:
            _write_tagged(w, msg, tagged_sorted)

    return decode, encode


_ABSENT: Final = object()


def _read_tagged(r: Reader, msg: Message, tagged: dict[int, _CompiledField]) -> None:
    count = r.uvarint()
    last_tag = -1
    for _ in range(count):
        tag = r.uvarint()
        size = r.uvarint()
        if tag <= last_tag:
            raise ProtocolError(f"tagged fields out of order: tag {tag} after {last_tag}")
        last_tag = tag
        known = tagged.get(tag)
        if known is None:
            r.raw(size)  # Unknown tags are skipped, never an error: that is how the format evolves.
            continue
        start = r.pos
        end = start + size
        if end > r.end:
            raise ProtocolError(f"tagged field {tag} claims {size} bytes past the end of the message")
        sub = Reader(r.buf, start, end)
        msg[known.name] = known.read(sub)
        r.pos = end


def _write_tagged(w: Writer, msg: Message, tagged: tuple[_CompiledField, ...]) -> None:
    items: list[tuple[int, bytes | bytearray]] = []
    for c in tagged:
        value = msg.get(c.name, _ABSENT)
        if value is _ABSENT or value == c.default():
            continue  # Kafka writes a tagged field only when it differs from its default.
        sub = Writer()
        c.write(sub, value)
        items.append((c.tag or 0, sub.buf))
    w.uvarint(len(items))
    for tag, data in items:
        w.uvarint(tag)
        w.uvarint(len(data))
        w.raw(data)


@dataclass(frozen=True)
class ApiSchema:
    """One Kafka API: its key, the versions Riel advertises, and its request and response fields."""

    key: int
    name: str
    min_version: int
    max_version: int
    flexible: str  # versions using compact encodings and tagged fields, e.g. "9+" or "none"
    request: tuple[Field, ...]
    response: tuple[Field, ...]
    header_exempt: bool = field(default=False)  # ApiVersions: response header stays v0 always

    def is_flexible(self, version: int) -> bool:
        return version in Versions.parse(self.flexible)

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version

    def request_codec(self, version: int) -> tuple[Decoder, Encoder]:
        return compile_struct(self.request, version, self.is_flexible(version))

    def response_codec(self, version: int) -> tuple[Decoder, Encoder]:
        return compile_struct(self.response, version, self.is_flexible(version))

    def decode_request(self, data: bytes | bytearray | memoryview, version: int) -> Message:
        r = Reader(data)
        msg: Message = self.request_codec(version)[0](r)
        return msg

    def encode_request(self, msg: Message, version: int) -> bytes:
        w = Writer()
        self.request_codec(version)[1](w, msg)
        return bytes(w.buf)

    def decode_response(self, data: bytes | bytearray | memoryview, version: int) -> Message:
        r = Reader(data)
        msg: Message = self.response_codec(version)[0](r)
        return msg

    def encode_response(self, msg: Message, version: int) -> bytes:
        w = Writer()
        self.response_codec(version)[1](w, msg)
        return bytes(w.buf)


def default_message(fields: Sequence[Field]) -> Message:
    """A message with every field at its default: the starting point for building responses."""
    return {f.name: f.default_value() for f in fields}
