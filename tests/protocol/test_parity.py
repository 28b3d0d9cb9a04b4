"""Our codec against independent implementations, byte for byte.

* kio 0.6.5 (generated from Kafka's message definitions, Rust core): for every API, every version we
  advertise that kio has, requests and responses: random message -> our encoder -> kio reader -> kio
  writer -> the same bytes; and our decoder gives the message back.
* kafka-python 3.0.12's hand-written ``kafka.protocol.old`` structs: the same round trip, for the
  versions it has. It is the only oracle for Produce v0-2, which kio dropped with Kafka 4.0.
* Golden frames captured from kafka-python's client-side encoder (``golden/``): decode with ours,
  re-encode, identical bytes, headers included.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kafka.protocol.old as kafka_old
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode as KioErrorCode
from kio.serial import entity_reader, entity_writer

from protocol.strategies import expected, message
from riel.protocol import headers
from riel.protocol.apis import ALL, API_VERSIONS, FETCH, METADATA
from riel.protocol.primitives import ExternalBytes
from riel.protocol.schema import ApiSchema, Field, Message, default_message

EXAMPLES = 15
GOLDEN = Path(__file__).parent / "golden"

# Versions we advertise that kio 0.6.5 does not model (its schemas follow Kafka 4.x, which removed
# them). Listed, not discovered: test_kio_gaps_are_exactly_the_listed_ones keeps this list honest.
KIO_LACKS: frozenset[tuple[str, int]] = frozenset({("Produce", 0), ("Produce", 1), ("Produce", 2)})


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def versions(api: ApiSchema) -> range:
    return range(api.min_version, api.max_version + 1)


def fields_of(api: ApiSchema, kind: str) -> tuple[Field, ...]:
    return api.request if kind == "request" else api.response


Encode = Callable[[Message, int], bytes]
Decode = Callable[[bytes, int], Message]


def codec(api: ApiSchema, kind: str) -> tuple[Encode, Decode]:
    if kind == "request":
        return api.encode_request, api.decode_request
    return api.encode_response, api.decode_response


def joined(chunks: list[bytes | bytearray | ExternalBytes]) -> bytes:
    """A response frame's chunks as one bytes object (none of these responses hand over files)."""
    out = bytearray()
    for chunk in chunks:
        assert not isinstance(chunk, ExternalBytes)
        out += chunk
    return bytes(out)


def cases() -> Iterator[Any]:
    for api in ALL:
        for version in versions(api):
            for kind in ("request", "response"):
                marks = []
                if (api.name, version) in KIO_LACKS:
                    marks.append(pytest.mark.skip(reason=f"kio has no {api.name} v{version}"))
                yield pytest.param(api, version, kind, marks=marks, id=f"{api.name}-v{version}-{kind}")


# ---------------------------------------------------------------------------------------------- kio

def kio_class(api: ApiSchema, version: int, kind: str) -> Any:
    module = importlib.import_module(f"kio.schema.{snake(api.name)}.v{version}.{kind}")
    return getattr(module, api.name + kind.capitalize())


_KIO_ERROR_CODES = sorted(int(code) for code in KioErrorCode)


def kio_values(f: Field) -> st.SearchStrategy[Any] | None:
    """kio decodes some fields into richer types that do not accept every integer of the width."""
    if f.name in ("error_code", "partition_error_code"):  # an enum: unknown codes do not parse
        return st.sampled_from(_KIO_ERROR_CODES)
    if f.name == "log_append_time_ms":  # a datetime, or -1 for "none"
        return st.just(-1) | st.integers(0, 253_402_300_799_999)
    if f.name == "transaction_start_time_ms":  # a datetime, not nullable: kio refuses Kafka's -1
        return st.integers(0, 253_402_300_799_999)
    # Timedeltas, converted through a float: exact below 2**53 us.
    if f.name in ("retention_time_ms", "session_lifetime_ms"):
        return st.integers(-(2**43), 2**43)
    return None


def kio_roundtrip(cls: Any, data: bytes, offset: int = 0) -> bytes:
    entity, size = entity_reader(cls)(data, offset)
    assert offset + size == len(data), "kio did not consume the whole message"
    out = io.BytesIO()
    entity_writer(cls)(out, entity)
    return out.getvalue()


@pytest.mark.parametrize(("api", "version", "kind"), cases())
def test_kio_agrees_byte_for_byte(api: ApiSchema, version: int, kind: str) -> None:
    cls = kio_class(api, version, kind)
    flexible = api.is_flexible(version)
    assert cls.__flexible__ == flexible
    fields = fields_of(api, kind)
    encode, decode = codec(api, kind)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message(fields, version, flexible, kio_values))
    def check(msg: Message) -> None:
        ours = encode(msg, version)
        assert kio_roundtrip(cls, ours) == ours
        assert decode(ours, version) == expected(fields, version, flexible, msg)

    check()


def test_kio_gaps_are_exactly_the_listed_ones() -> None:
    missing = set()
    for api in ALL:
        for version in versions(api):
            try:
                kio_class(api, version, "request")
                kio_class(api, version, "response")
            except ModuleNotFoundError:
                missing.add((api.name, version))
    assert missing == KIO_LACKS


@pytest.mark.parametrize(("api", "version", "kind"), cases())
def test_kio_agrees_on_headers(api: ApiSchema, version: int, kind: str) -> None:
    """Request header v1/v2 and response header v0/v1 chosen per version as Kafka does."""
    cls = kio_class(api, version, kind)
    body = default_message(fields_of(api, kind))
    if kind == "request":
        frame = headers.encode_request(api, version, 7, "riel-test", body)
    else:
        request = headers.Request(api, version, 7, "riel-test", {})
        frame = joined(headers.encode_response(request, body))
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    header, header_size = entity_reader(cls.__header_schema__)(frame, 4)
    assert header.correlation_id == 7
    out = io.BytesIO()
    entity_writer(cls.__header_schema__)(out, header)
    assert kio_roundtrip(cls, frame, 4 + header_size) == frame[4 + header_size :]
    assert frame[4 : 4 + header_size] == out.getvalue()


# ------------------------------------------------------------------- kafka-python's hand-written structs

def _old_structs() -> dict[tuple[int, int, str], Any]:
    from kafka.protocol.old.api import Request, Response

    found: dict[tuple[int, int, str], Any] = {}
    for info in pkgutil.iter_modules(kafka_old.__path__):
        module = importlib.import_module(f"{kafka_old.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            key, version = getattr(cls, "API_KEY", None), getattr(cls, "API_VERSION", None)
            if not isinstance(key, int) or not isinstance(version, int):
                continue
            if issubclass(cls, Request):
                found[key, version, "request"] = cls
            elif issubclass(cls, Response):
                found[key, version, "response"] = cls
    return found


OLD_STRUCTS = _old_structs()


# kafka-python 3.0.12's hand-written v2 ACL structs reuse the classic v1 schema although v2 is flexible
# (its client never sends them); kio covers these versions.
OLD_STRUCTS_WRONG: frozenset[tuple[str, int]] = frozenset(
    {("DescribeAcls", 2), ("CreateAcls", 2), ("DeleteAcls", 2)}
)


def old_cases() -> Iterator[Any]:
    for api in ALL:
        for version in versions(api):
            for kind in ("request", "response"):
                if (api.key, version, kind) in OLD_STRUCTS and (api.name, version) not in OLD_STRUCTS_WRONG:
                    yield pytest.param(api, version, kind, id=f"{api.name}-v{version}-{kind}")


def test_old_structs_cover_produce_v0_to_v2() -> None:
    """The versions kio lacks must be covered here, or nothing independent checks them."""
    for name, version in KIO_LACKS:
        key = next(api.key for api in ALL if api.name == name)
        assert (key, version, "request") in OLD_STRUCTS
        assert (key, version, "response") in OLD_STRUCTS


@pytest.mark.parametrize(("api", "version", "kind"), old_cases())
def test_kafka_python_structs_agree_byte_for_byte(api: ApiSchema, version: int, kind: str) -> None:
    struct = OLD_STRUCTS[api.key, version, kind]
    flexible = api.is_flexible(version)
    fields = fields_of(api, kind)
    encode, decode = codec(api, kind)

    def values(f: Field) -> st.SearchStrategy[Any] | None:
        # kafka-python reads any ApiVersions response with an error as v0 (the KIP-511 fallback).
        if api.key == API_VERSIONS.key and kind == "response" and f.name == "error_code":
            return st.just(0)
        return None

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message(fields, version, flexible, values))
    def check(msg: Message) -> None:
        ours = encode(msg, version)
        assert bytes(struct.decode(ours).encode()) == ours
        assert decode(ours, version) == expected(fields, version, flexible, msg)

    check()


# ---------------------------------------------------------------------------------------- golden frames

def golden_frames() -> Iterator[Any]:
    paths = sorted(GOLDEN.glob("*.bin"))
    assert paths, "no golden frames: run tests/protocol/golden/capture.py"
    for path in paths:
        yield pytest.param(path, id=path.name)


def _parse_golden_name(path: Path) -> tuple[ApiSchema, int, str]:
    pattern = r"(?P<api>[a-z_]+)_v(?P<version>\d+)_\d{3}\.(?P<kind>request|response)\.bin"
    match = re.fullmatch(pattern, path.name)
    assert match, path.name
    api = next(api for api in ALL if snake(api.name) == match["api"])
    return api, int(match["version"]), match["kind"]


@pytest.mark.parametrize("path", golden_frames())
def test_golden_frame_round_trips(path: Path) -> None:
    api, version, kind = _parse_golden_name(path)
    frame = path.read_bytes()
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    if kind == "request":
        request = headers.decode_request(frame[4:])
        assert (request.api, request.api_version, request.version_supported) == (api, version, True)
        assert request.client_id == "kafka-python"
        again = headers.encode_request(api, version, request.correlation_id, request.client_id, request.body)
    else:
        correlation_id, body = headers.decode_response(api, version, frame[4:])
        request = headers.Request(api, version, correlation_id, "kafka-python", {})
        again = joined(headers.encode_response(request, body))
    assert again == frame


def test_golden_frames_decode_to_what_kafka_python_sent() -> None:
    """Spot checks that names line up with kafka-python's (both come from Kafka's JSON)."""
    produce = headers.decode_request((GOLDEN / "produce_v9_000.request.bin").read_bytes()[4:])
    partition = produce.body["topic_data"][0]["partition_data"][0]
    assert (produce.body["transactional_id"], partition["index"]) == ("txn-1", 1)
    assert bytes(partition["records"])[16] == 2  # record batch magic byte
    fetch = headers.decode_request((GOLDEN / "fetch_v12_000.request.bin").read_bytes()[4:])
    forgotten = fetch.body["forgotten_topics_data"]
    assert [(f["topic"], f["partitions"]) for f in forgotten] == [("payments", [1, 2])]
    assert fetch.body["replica_id"] == -1 and fetch.body["cluster_id"] is None
    metadata_frame = (GOLDEN / "metadata_v12_000.response.bin").read_bytes()
    _, metadata = headers.decode_response(METADATA, 12, metadata_frame[4:])
    assert metadata["topics"][0]["partitions"][0]["isr_nodes"] == [1]
    _, fetched = headers.decode_response(FETCH, 12, (GOLDEN / "fetch_v12_000.response.bin").read_bytes()[4:])
    part = fetched["responses"][0]["partitions"][0]
    assert part["current_leader"] == {"leader_id": 1, "leader_epoch": 0}
    assert part["diverging_epoch"] == {"epoch": -1, "end_offset": -1}  # tagged, absent: default
