"""Turning application objects into message bytes and back.

Bytes are the default: ``publish`` takes ``bytes``/``bytearray``/``memoryview`` (and ``str``, encoded
as UTF-8, for convenience) and consumers get ``bytes``. Opt in to more with a codec spec:

- ``"bytes"`` (default), ``"str"`` (UTF-8 text), ``"json"`` (any JSON-serialisable value);
- a ``msgspec.Struct`` subclass or a pydantic ``BaseModel`` subclass: messages are that model as JSON,
  validated on the way in and out;
- any object with ``encode(obj) -> bytes`` and ``decode(bytes) -> obj`` methods.

``None`` stays ``None`` through every codec (Kafka's null key/value, e.g. a tombstone).
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Codec(Protocol):
    def encode(self, obj: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


CodecSpec = str | type | Codec


class CodecError(TypeError):
    """A value that its codec cannot encode (wrong type), with what to do about it."""


class BytesCodec:
    """Bytes as they are; ``str`` is accepted on the way in as UTF-8."""

    name = "bytes"

    def encode(self, obj: Any) -> bytes:
        if isinstance(obj, bytes):
            return obj
        if isinstance(obj, bytearray | memoryview):
            return bytes(obj)
        if isinstance(obj, str):
            return obj.encode()
        raise CodecError(
            f"cannot publish a {type(obj).__name__} as bytes: pass bytes or str, or choose a codec "
            "such as value_codec='json' or a msgspec/pydantic model class"
        )

    def decode(self, data: bytes) -> Any:
        return data


class StrCodec:
    name = "str"

    def encode(self, obj: Any) -> bytes:
        if not isinstance(obj, str):
            raise CodecError(f"the 'str' codec takes str, not {type(obj).__name__}")
        return obj.encode()

    def decode(self, data: bytes) -> Any:
        return data.decode()


class JsonCodec:
    name = "json"

    def encode(self, obj: Any) -> bytes:
        try:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        except TypeError as exc:
            raise CodecError(f"the 'json' codec cannot encode this value: {exc}") from None

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class MsgspecCodec:
    """A ``msgspec.Struct`` subclass, as JSON."""

    def __init__(self, model: type) -> None:
        import msgspec

        self.model = model
        self._encoder = msgspec.json.Encoder()
        self._decoder: Any = msgspec.json.Decoder(model)

    def encode(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            raise CodecError(f"expected a {self.model.__name__}, got {type(obj).__name__}")
        return self._encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        return self._decoder.decode(data)


class PydanticCodec:
    """A pydantic ``BaseModel`` subclass, as JSON (validated when decoded)."""

    def __init__(self, model: type) -> None:
        self.model = model

    def encode(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            raise CodecError(f"expected a {self.model.__name__}, got {type(obj).__name__}")
        dumped: str = obj.model_dump_json()  # type: ignore[attr-defined]  # checked to be a model
        return dumped.encode()

    def decode(self, data: bytes) -> Any:
        return self.model.model_validate_json(data)  # type: ignore[attr-defined]


_NAMED: dict[str, Codec] = {"bytes": BytesCodec(), "str": StrCodec(), "json": JsonCodec()}


def _is_subclass_of(model: type, module: str, name: str) -> bool:
    return any(base.__module__.split(".")[0] == module and base.__name__ == name for base in model.__mro__)


def make_codec(spec: CodecSpec | None) -> Codec:
    """The codec a spec names (see the module docstring); None means bytes."""
    if spec is None:
        return _NAMED["bytes"]
    if isinstance(spec, str):
        try:
            return _NAMED[spec]
        except KeyError:
            raise ValueError(
                f"unknown codec {spec!r}: use one of {sorted(_NAMED)} or a model class"
            ) from None
    if isinstance(spec, type):
        if _is_subclass_of(spec, "msgspec", "Struct"):
            return MsgspecCodec(spec)
        if _is_subclass_of(spec, "pydantic", "BaseModel"):
            return PydanticCodec(spec)
        raise TypeError(f"{spec.__name__} is neither a msgspec.Struct nor a pydantic BaseModel subclass")
    if isinstance(spec, Codec):
        return spec
    raise TypeError(f"not a codec: {spec!r}")


def encode_optional(codec: Codec, obj: Any) -> bytes | None:
    return None if obj is None else codec.encode(obj)
