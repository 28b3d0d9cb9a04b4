"""Request and response headers, and turning whole frames into requests and responses into frames.

Request header v0/v1 are classic; v2 (every flexible request) adds tagged fields, but keeps
``client_id`` as a classic nullable string. Response header v1 adds tagged fields for flexible
responses, except ApiVersions, whose response header is always v0 so that a client that does not yet
know our versions can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riel.errors import ProtocolError
from riel.protocol.apis import API_VERSIONS, APIS
from riel.protocol.primitives import ExternalBytes, Reader, Writer
from riel.protocol.schema import ApiSchema, Message, compile_struct


@dataclass(slots=True)
class Request:
    api: ApiSchema
    api_version: int
    correlation_id: int
    client_id: str | None
    body: Message
    # False for an ApiVersions request whose version we do not know: answered with error 35.
    version_supported: bool = True
    # The peer's address as the server saw it (DescribeGroups reports it per member); "" if unknown.
    client_host: str = ""
    # The listener the request came in on (its name, e.g. "SASL_PLAINTEXT") and the authenticated
    # principal ("User:alice"; "User:ANONYMOUS" without SASL). Set by the server, read by handlers.
    listener: str = ""
    principal: str = "User:ANONYMOUS"

    @property
    def api_key(self) -> int:
        return self.api.key


def decode_request(frame: bytes | bytearray | memoryview) -> Request:
    """Parse one request frame (without its size prefix). Raises only ``ProtocolError``."""
    r = Reader(frame)
    api_key = r.int16()
    api_version = r.int16()
    correlation_id = r.int32()
    client_id = r.string()
    api = APIS.get(api_key)
    if api is None:
        raise ProtocolError(f"unknown API key {api_key} (correlation id {correlation_id})")
    if not api.supports(api_version):
        if api is API_VERSIONS:
            # KIP-511: answer an unknown ApiVersions version with error 35 in the v0 body layout.
            return Request(api, api_version, correlation_id, client_id, {}, version_supported=False)
        raise ProtocolError(
            f"{api.name} v{api_version} is not supported (Riel implements v{api.min_version}-"
            f"v{api.max_version})"
        )
    if api.is_flexible(api_version):
        _skip_tagged_fields(r)
    body = api.request_codec(api_version)[0](r)
    return Request(api, api_version, correlation_id, client_id, body)


def _skip_tagged_fields(r: Reader) -> None:
    for _ in range(r.uvarint()):
        r.uvarint()
        r.raw(r.uvarint())


def encode_request(
    api: ApiSchema, version: int, correlation_id: int, client_id: str | None, body: Message
) -> bytes:
    """A whole request frame, size prefix included (used by tests and the bench client)."""
    w = Writer()
    w.int32(0)
    w.int16(api.key)
    w.int16(version)
    w.int32(correlation_id)
    w.string(client_id)
    if api.is_flexible(version):
        w.uvarint(0)
    api.request_codec(version)[1](w, body)
    out = w.buf
    out[0:4] = (len(out) - 4).to_bytes(4, "big")
    return bytes(out)


def encode_response(request: Request, body: Message) -> list[bytes | bytearray | ExternalBytes]:
    """A whole response frame as chunks (size prefix first); some chunks may be ``ExternalBytes``."""
    api = request.api
    version = request.api_version if request.version_supported else 0
    w = Writer()
    w.int32(0)  # size, patched below
    w.int32(request.correlation_id)
    if api.is_flexible(version) and not api.header_exempt:
        w.uvarint(0)
    api.response_codec(version)[1](w, body)
    chunks = w.chunks()
    size = w.size() - 4
    first = chunks[0]
    assert isinstance(first, bytearray)
    first[0:4] = size.to_bytes(4, "big")
    return chunks


def decode_response(
    api: ApiSchema, version: int, frame: bytes | bytearray | memoryview
) -> tuple[int, Message]:
    """Parse a response frame without its size prefix: (correlation id, body). For tests and tools."""
    r = Reader(frame)
    correlation_id = r.int32()
    if api.is_flexible(version) and not api.header_exempt:
        _skip_tagged_fields(r)
    body: Any = compile_struct(api.response, version, api.is_flexible(version))[0](r)
    return correlation_id, body
