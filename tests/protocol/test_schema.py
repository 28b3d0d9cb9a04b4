"""The schema DSL and the codec compiled from it, plus conformance to Kafka's message definitions."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from kafka.protocol.schemas.load_json import load_json

from riel.errors import ProtocolError
from riel.protocol import headers
from riel.protocol.apis import (
    ALL,
    API_VERSIONS,
    APIS,
    FETCH,
    FIND_COORDINATOR,
    INIT_PRODUCER_ID,
    JOIN_GROUP,
    LIST_OFFSETS,
    METADATA,
    PRODUCE,
)
from riel.protocol.primitives import ExternalBytes, Reader, Writer
from riel.protocol.schema import (
    INT8,
    INT32,
    INT64,
    STRING,
    ApiSchema,
    Array,
    Field,
    Versions,
    compile_struct,
    default_message,
)


def joined(chunks: list[bytes | bytearray | ExternalBytes]) -> bytes:
    """A response frame's chunks as one bytes object (none of these responses hand over files)."""
    out = bytearray()
    for chunk in chunks:
        assert not isinstance(chunk, ExternalBytes)
        out += chunk
    return bytes(out)


# ------------------------------------------------------------------ conformance to Kafka's definitions
# kafka-python 3.0.12 ships Apache Kafka's own clients/src/main/resources/common/message/*.json (Kafka
# 4.x, which still describes the removed versions field by field). For every version we advertise, the
# fields we carry must be Kafka's: same order, mechanical snake_case names, types, nullability, tags,
# defaults, and the same version strings.


def snake(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)  # ISRNodes -> ISR_Nodes
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()  # TopicId -> topic_id


def test_snake_case_is_mechanical() -> None:
    names = ["TopicId", "PartitionIndex", "ThrottleTimeMs", "ISRNodes", "IsrNodes", "timeoutMs", "Enable2Pc"]
    assert [snake(n) for n in names] == [
        "topic_id", "partition_index", "throttle_time_ms", "isr_nodes", "isr_nodes", "timeout_ms",
        "enable2_pc",
    ]


def _json_default(spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    default = spec.get("default")
    if kind.startswith("[]") or kind[0].isupper():
        return None if default == "null" else "<composite>"
    if default == "null":
        return None
    if kind in ("int8", "int16", "uint16", "int32", "int64"):
        return 0 if default is None else int(str(default), 0)
    if kind == "bool":
        return default == "true"
    if kind == "string":
        return "" if default is None else default
    if kind == "bytes":
        return b""
    if kind == "records":
        return None
    if kind == "uuid":
        return uuid.UUID(int=0)
    if kind == "float64":
        return 0.0 if default is None else float(default)
    raise AssertionError(f"unknown JSON type {kind}")


def json_layout(specs: list[dict[str, Any]], version: int, flexible: bool) -> list[tuple[Any, ...]]:
    layout = []
    for spec in specs:
        if version not in Versions.parse(spec["versions"]):
            continue
        tagged = version in Versions.parse(spec.get("taggedVersions"))
        assert flexible or not tagged
        kind = spec["type"]
        shape: Any
        if "fields" in spec:
            nested = json_layout(spec["fields"], version, flexible)
            shape = ("array", nested) if kind.startswith("[]") else ("struct", nested)
        else:
            shape = ("array", kind[2:]) if kind.startswith("[]") else kind
        layout.append((
            snake(spec["name"]),
            shape,
            spec["versions"],
            spec.get("nullableVersions"),
            spec["tag"] if tagged else None,
            _json_default(spec),
        ))
    return layout


def our_layout(
    fields: tuple[Field, ...] | list[Field], version: int, flexible: bool
) -> list[tuple[Any, ...]]:
    layout = []
    for f in fields:
        if version not in f.version_range or (f.tag is not None and not flexible):
            continue
        shape: Any
        default: Any = f.default_value()
        if isinstance(f.type, list):
            shape, default = ("struct", our_layout(f.type, version, flexible)), "<composite>"
        elif isinstance(f.type, Array):
            element = f.type.element
            inner = our_layout(element, version, flexible) if isinstance(element, list) else element.name
            shape = ("array", inner)
            default = None if default is None else "<composite>"
        else:
            shape = f.type.name
        layout.append((f.name, shape, f.versions, f.nullable, f.tag, default))
    return layout


@pytest.mark.parametrize("api", ALL, ids=lambda api: api.name)
@pytest.mark.parametrize("kind", ["request", "response"])
def test_fields_are_kafkas_for_every_advertised_version(api: ApiSchema, kind: str) -> None:
    spec = load_json(api.name + kind.capitalize())
    assert spec["apiKey"] == api.key
    fields = api.request if kind == "request" else api.response
    kafka_flexible = Versions.parse(spec["flexibleVersions"])
    for version in range(api.min_version, api.max_version + 1):
        flexible = api.is_flexible(version)
        assert flexible == (version in kafka_flexible), f"v{version}"
        ours, kafkas = our_layout(fields, version, flexible), json_layout(spec["fields"], version, flexible)
        assert ours == kafkas, f"v{version}"


def test_advertised_ranges() -> None:
    ranges = {api.name: (api.min_version, api.max_version) for api in ALL}
    assert ranges == {
        "Produce": (0, 9), "Fetch": (4, 16), "ListOffsets": (1, 7), "Metadata": (0, 12),
        "OffsetCommit": (2, 8), "OffsetFetch": (1, 8), "FindCoordinator": (0, 4), "JoinGroup": (0, 7),
        "Heartbeat": (0, 4), "LeaveGroup": (0, 4), "SyncGroup": (0, 5), "DescribeGroups": (0, 5),
        "ListGroups": (0, 4), "ApiVersions": (0, 3), "CreateTopics": (2, 5), "DeleteTopics": (1, 4),
        "DeleteRecords": (0, 2), "InitProducerId": (0, 4), "DescribeConfigs": (1, 4), "AlterConfigs": (0, 2),
        "CreatePartitions": (0, 2), "DeleteGroups": (0, 2), "IncrementalAlterConfigs": (0, 1),
        "OffsetDelete": (0, 0), "DescribeAcls": (1, 3), "CreateAcls": (1, 3), "DeleteAcls": (1, 3),
        "SaslHandshake": (0, 1), "SaslAuthenticate": (0, 2), "DescribeUserScramCredentials": (0, 0),
        "AlterUserScramCredentials": (0, 0), "AddPartitionsToTxn": (0, 3), "AddOffsetsToTxn": (0, 3),
        "EndTxn": (0, 3), "TxnOffsetCommit": (0, 3), "DescribeTransactions": (0, 0),
        "ListTransactions": (0, 1),
    }
    assert len(APIS) == len(ALL)
    # librdkafka < 2.11 enables features by probing these exact versions (see DESIGN.md).
    for api, version in [(PRODUCE, 0), (JOIN_GROUP, 0), (FETCH, 4), (FETCH, 10), (LIST_OFFSETS, 1),
                         (FIND_COORDINATOR, 0), (INIT_PRODUCER_ID, 0)]:
        assert api.supports(version)


def test_every_version_compiles_once() -> None:
    for api in ALL:
        for version in range(api.min_version, api.max_version + 1):
            assert api.request_codec(version) is api.request_codec(version)
            assert api.response_codec(version) is api.response_codec(version)


# ------------------------------------------------------------------------------------ tagged fields

TAGGED = (
    Field("plain", INT32),
    Field("late", INT64, "1+", default=-1),
    Field("b", STRING, "0+", nullable="0+", tag=5, default=None),
    Field("a", INT32, tag=1, default=-1),
    Field("s", [Field("x", INT8, default=-1)], tag=2),
)


def encode(fields: tuple[Field, ...], msg: dict[str, Any], version: int = 1, flexible: bool = True) -> bytes:
    w = Writer()
    compile_struct(fields, version, flexible)[1](w, msg)
    return bytes(w.buf)


def decode(fields: tuple[Field, ...], data: bytes, version: int = 1, flexible: bool = True) -> dict[str, Any]:
    r = Reader(data)
    msg: dict[str, Any] = compile_struct(fields, version, flexible)[0](r)
    assert r.remaining() == 0
    return msg


def test_tagged_fields_at_their_default_are_not_written() -> None:
    assert encode(TAGGED, {"plain": 7, "late": 1}) == bytes.fromhex("00000007 0000000000000001 00")
    explicit_defaults = {"plain": 7, "late": 1, "a": -1, "b": None, "s": {"x": -1}}
    assert encode(TAGGED, explicit_defaults) == encode(TAGGED, {"plain": 7, "late": 1})


def test_tagged_fields_are_written_sorted_by_tag() -> None:
    data = encode(TAGGED, {"plain": 0, "late": 0, "b": "hi", "s": {"x": 3}, "a": 9})
    tags = bytes.fromhex("03" "01 04 00000009" "02 02 03 00" "05 03 03 6869")
    assert data == bytes.fromhex("00000000 0000000000000000") + tags
    assert decode(TAGGED, data) == {"plain": 0, "late": 0, "a": 9, "b": "hi", "s": {"x": 3}}


def test_unknown_tagged_fields_are_skipped() -> None:
    body = bytes.fromhex("00000001 0000000000000002")
    tags = bytes.fromhex("03" "00 02 ffff" "01 04 00000009" "63 01 7f")  # tags 0 and 99 are unknown
    assert decode(TAGGED, body + tags) == {"plain": 1, "late": 2, "a": 9, "b": None, "s": {"x": -1}}


def test_tagged_fields_out_of_order_or_overlong_are_refused() -> None:
    body = bytes.fromhex("00000001 0000000000000002")
    with pytest.raises(ProtocolError):
        decode(TAGGED, body + bytes.fromhex("02" "05 01 00" "01 04 00000009"))
    with pytest.raises(ProtocolError):
        decode(TAGGED, body + bytes.fromhex("01" "01 09 00000009"))


def test_tagged_fields_do_not_exist_in_classic_versions() -> None:
    data = encode(TAGGED, {"plain": 1, "late": 2, "a": 9}, flexible=False)
    assert data == bytes.fromhex("00000001 0000000000000002")
    assert decode(TAGGED, data, flexible=False)["a"] == -1


def test_fields_missing_from_a_version_decode_to_their_default() -> None:
    assert encode(TAGGED, {"plain": 1, "late": 5}, version=0) == bytes.fromhex("00000001 00")
    assert decode(TAGGED, bytes.fromhex("00000001 00"), version=0)["late"] == -1


def test_fields_left_out_of_a_message_are_encoded_as_their_default() -> None:
    assert decode(TAGGED, encode(TAGGED, {})) == {"plain": 0, "late": -1, "a": -1, "b": None, "s": {"x": -1}}
    empty = METADATA.encode_response({}, 12)
    assert METADATA.decode_response(empty, 12) == default_message(METADATA.response)


# --------------------------------------------------------------------------------- null and empty

NULLS = (
    Field("ns", STRING, nullable="0+"),
    Field("na", Array(INT32), nullable="0+"),
    Field("s", STRING),
    Field("a", Array(INT32)),
)


@pytest.mark.parametrize("flexible", [False, True])
def test_null_strings_and_arrays(flexible: bool) -> None:
    data = encode(NULLS, {"ns": None, "na": None, "s": "", "a": []}, flexible=flexible)
    if flexible:
        assert data == bytes.fromhex("00 00 01 01 00")
    else:
        assert data == bytes.fromhex("ffff ffffffff 0000 00000000")
    assert decode(NULLS, data, flexible=flexible) == {"ns": None, "na": None, "s": "", "a": []}


@pytest.mark.parametrize(("flexible", "data"), [
    (False, "ffff ffffffff ffff 00000000"),
    (False, "ffff ffffffff 0000 ffffffff"),
    (True, "00 00 00 01 00"),
    (True, "00 00 01 00 00"),
])
def test_null_where_the_schema_forbids_it_is_refused(flexible: bool, data: str) -> None:
    # Kafka: "non-nullable field was serialized as null". Handlers may rely on str being str.
    with pytest.raises(ProtocolError):
        decode(NULLS, bytes.fromhex(data), flexible=flexible)


def test_none_for_a_non_nullable_field_is_encoded_as_empty() -> None:
    assert encode(NULLS, {"ns": None, "na": None, "s": None, "a": None}, flexible=False) == bytes.fromhex(
        "ffff ffffffff 0000 00000000")


def test_metadata_v0_all_topics_is_an_empty_array_v1_a_null_one() -> None:
    assert METADATA.encode_request({"topics": None}, 0) == bytes.fromhex("00000000")
    assert METADATA.encode_request({"topics": None}, 1) == bytes.fromhex("ffffffff")
    assert METADATA.decode_request(bytes.fromhex("ffffffff"), 1)["topics"] is None
    with pytest.raises(ProtocolError):
        METADATA.decode_request(bytes.fromhex("ffffffff"), 0)


def test_records_may_be_handed_over_as_external_bytes() -> None:
    class Segment(ExternalBytes):
        pass

    body = {"responses": [{"topic": "t", "partitions": [{"partition_index": 0, "records": Segment(5)}]}]}
    inline = {"responses": [{"topic": "t", "partitions": [{"partition_index": 0, "records": b"12345"}]}]}
    for version, size in [(11, b"\x00\x00\x00\x05"), (12, b"\x06")]:
        w = Writer()
        FETCH.response_codec(version)[1](w, body)
        chunks = w.chunks()
        assert [type(c) for c in chunks].count(Segment) == 1
        assert w.size() == len(FETCH.encode_response(inline, version))
        spliced = joined([b"12345" if isinstance(c, Segment) else c for c in chunks])
        assert spliced == FETCH.encode_response(inline, version)
        assert joined(chunks[:1]).endswith(size)


# ------------------------------------------------------------------------------------------ headers

def test_request_header_v2_keeps_client_id_a_classic_string() -> None:
    frame = headers.encode_request(METADATA, 12, 5, "cli", {"topics": None})
    assert frame[4:] == bytes.fromhex("0003 000c 00000005 0003 636c69 00") + METADATA.encode_request(
        {"topics": None}, 12)
    request = headers.decode_request(frame[4:])
    assert (request.api, request.api_version) == (METADATA, 12)
    assert (request.correlation_id, request.client_id) == (5, "cli")


def test_request_header_tagged_fields_are_skipped() -> None:
    header = bytes.fromhex("0003 000c 00000005 ffff") + bytes.fromhex("01 07 02 abcd")
    request = headers.decode_request(header + METADATA.encode_request({"topics": None}, 12))
    assert request.client_id is None and request.body["topics"] is None


def test_api_versions_request_of_an_unknown_version_is_answered_in_v0() -> None:
    # KIP-511: a client newer than us sends ApiVersions v9; we must answer, in the v0 layout, with 35.
    frame = bytes.fromhex("0012 0009 0000002a 0001 78") + b"\x00 anything a future version may carry"
    request = headers.decode_request(frame)
    assert (request.api, request.api_version, request.version_supported) == (API_VERSIONS, 9, False)
    body = {"error_code": 35, "api_keys": [{"api_key": 18, "min_version": 0, "max_version": 3}]}
    response = joined(headers.encode_response(request, body))
    assert response == bytes.fromhex("00000010 0000002a 0023 00000001 0012 0000 0003")


def test_other_apis_of_an_unknown_version_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not supported"):
        headers.decode_request(bytes.fromhex("0003 000d 00000001 ffff"))
    with pytest.raises(ProtocolError, match="unknown API key"):
        headers.decode_request(bytes.fromhex("7fff 0000 00000001 ffff"))


def test_api_versions_response_header_is_v0_even_in_flexible_versions() -> None:
    request = headers.Request(API_VERSIONS, 3, 42, None, {})
    frame = joined(headers.encode_response(request, {}))
    assert frame[4:8] == (42).to_bytes(4, "big")
    assert frame[8:] == API_VERSIONS.encode_response({}, 3)  # no tagged-field byte after the correlation id
    assert headers.decode_response(API_VERSIONS, 3, frame[4:]) == (42, default_message(API_VERSIONS.response))


def test_flexible_response_header_has_tagged_fields() -> None:
    request = headers.Request(METADATA, 9, 42, None, {})
    frame = joined(headers.encode_response(request, {}))
    assert frame[4:9] == bytes.fromhex("0000002a 00")
    request = headers.Request(METADATA, 8, 42, None, {})
    frame = joined(headers.encode_response(request, {}))
    assert frame[8:] == METADATA.encode_response({}, 8)


def test_every_array_element_takes_at_least_one_byte() -> None:
    """``Reader`` refuses array counts larger than the bytes left; no valid message may trip that."""

    def check(fields: tuple[Field, ...] | list[Field], version: int, flexible: bool, where: str) -> None:
        for f in fields:
            if version not in f.version_range:
                continue
            t = f.type
            element = t.element if isinstance(t, Array) else t
            if isinstance(element, list):
                carried = [g for g in element if version in g.version_range and (g.tag is None or flexible)]
                assert flexible or carried, f"{where}.{f.name} v{version}: empty element"
                check(element, version, flexible, f"{where}.{f.name}")

    for api in ALL:
        for version in range(api.min_version, api.max_version + 1):
            check(api.request, version, api.is_flexible(version), f"{api.name}Request")
            check(api.response, version, api.is_flexible(version), f"{api.name}Response")
