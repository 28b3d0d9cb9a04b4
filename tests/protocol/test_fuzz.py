"""Peer bytes can only ever raise ``ProtocolError``: decoders, request headers and framing, fuzzed.

Each API x version x direction gets random bytes and mutations of valid encodings (truncated, bytes
flipped, bytes inserted or dropped, trailing data). Any other exception escaping is a bug: the server
closes one connection on ``ProtocolError`` and would do something worse on anything else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.strategies import message
from riel.errors import ProtocolError
from riel.protocol import headers
from riel.protocol.apis import ALL, API_VERSIONS, METADATA, PRODUCE
from riel.protocol.frames import FrameDecoder, frame
from riel.protocol.schema import ApiSchema, Message

EXAMPLES = 15
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cases() -> Iterator[Any]:
    for api in ALL:
        for version in range(api.min_version, api.max_version + 1):
            for kind in ("request", "response"):
                yield pytest.param(api, version, kind, id=f"{api.name}-v{version}-{kind}")


def only_protocol_errors(parse: Callable[[bytes], Any], data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse(data)


@st.composite
def mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` damaged the ways a broken or hostile peer would damage it."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "trail"]))
        at = draw(st.integers(0, len(out)))
        if op == "truncate":
            del out[at:]
        elif op == "flip" and at < len(out):
            out[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 4))]
        elif op == "trail":
            out += draw(st.binary(min_size=1, max_size=8))
    return bytes(out)


Encode = Callable[[Message, int], bytes]
Decode = Callable[[bytes, int], Any]


def body_codec(api: ApiSchema, kind: str) -> tuple[Encode, Decode]:
    if kind == "request":
        return api.encode_request, api.decode_request
    return api.encode_response, api.decode_response


@pytest.mark.parametrize(("api", "version", "kind"), cases())
def test_decoders_raise_only_protocol_errors(api: ApiSchema, version: int, kind: str) -> None:
    encode, decode = body_codec(api, kind)
    fields = api.request if kind == "request" else api.response
    valid = message(fields, version, api.is_flexible(version)).map(lambda msg: encode(msg, version))

    @FUZZ
    @given(st.binary(max_size=64) | valid.flatmap(mutation))
    def check(data: bytes) -> None:
        only_protocol_errors(lambda d: decode(d, version), data)

    check()


@FUZZ
@given(st.binary(max_size=64))
def test_random_request_frames(data: bytes) -> None:
    only_protocol_errors(headers.decode_request, data)


def _request_frames() -> st.SearchStrategy[bytes]:
    def framed(api: ApiSchema, version: int) -> st.SearchStrategy[bytes]:
        body = message(api.request, version, api.is_flexible(version))
        return body.map(lambda msg: headers.encode_request(api, version, 1, "fuzz", msg)[4:])

    pairs = [(api, v) for api in ALL for v in range(api.min_version, api.max_version + 1)]
    return st.sampled_from(pairs).flatmap(lambda pair: framed(*pair))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_request_frames().flatmap(mutation))
def test_mutated_request_frames(data: bytes) -> None:
    only_protocol_errors(headers.decode_request, data)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([(API_VERSIONS, 3), (METADATA, 12), (PRODUCE, 9), (PRODUCE, 2)]),
       st.binary(max_size=64))
def test_random_response_frames(api_version: tuple[ApiSchema, int], data: bytes) -> None:
    api, version = api_version
    only_protocol_errors(lambda d: headers.decode_response(api, version, d), data)


# ------------------------------------------------------------------------------------------ framing

def feed(decoder: FrameDecoder, data: bytes, chunk_sizes: list[int]) -> list[bytes]:
    frames = []
    pos = 0
    sizes = iter(chunk_sizes)
    while pos < len(data):
        size = next(sizes, 1) or 1
        decoder.receive_data(data[pos : pos + size])
        pos += size
        while (got := decoder.next_frame()) is not None:
            frames.append(got)
    return frames


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=5), st.lists(st.integers(0, 50), max_size=20))
def test_frames_are_the_same_however_the_bytes_arrive(payloads: list[bytes], chunk_sizes: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    assert feed(FrameDecoder(), stream, [1] * len(stream)) == payloads
    assert feed(FrameDecoder(), stream, chunk_sizes) == payloads
    whole = FrameDecoder()
    assert feed(whole, stream, [len(stream)]) == payloads
    assert whole.buffered == 0


@FUZZ
@given(st.binary(max_size=200), st.lists(st.integers(1, 16), max_size=30))
def test_random_streams_raise_only_protocol_errors(stream: bytes, chunk_sizes: list[int]) -> None:
    decoder = FrameDecoder(max_frame_size=64)
    try:
        for got in feed(decoder, stream, chunk_sizes):
            assert len(got) <= 64
    except ProtocolError:
        # Poisoned: every later call fails the same way, nothing more is buffered.
        with pytest.raises(ProtocolError):
            decoder.receive_data(b"\x00")
        with pytest.raises(ProtocolError):
            decoder.next_frame()


@pytest.mark.parametrize("size", [65, 2**31 - 1, -1, -(2**31)])
def test_oversized_and_negative_sizes_are_refused_at_the_header(size: int) -> None:
    decoder = FrameDecoder(max_frame_size=64)
    decoder.receive_data(b"\x00\x00\x00\x01x")  # a good frame first
    assert decoder.next_frame() == b"x"
    header = size.to_bytes(4, "big", signed=True)
    for i, byte in enumerate(header):
        if i < 3:
            decoder.receive_data(bytes([byte]))
        else:
            with pytest.raises(ProtocolError, match="refused"):
                decoder.receive_data(bytes([byte]))  # refused before any payload is buffered
    with pytest.raises(ProtocolError):
        decoder.next_frame()


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(max_frame_size=64)
    decoder.receive_data(frame(b"x" * 64))
    assert decoder.next_frame() == b"x" * 64
    assert decoder.next_frame() is None
