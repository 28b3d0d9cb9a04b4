"""ApiVersions as librdkafka reads it: its features are switched on by testing that particular versions lie
inside the advertised ranges (librdkafka src/rdkafka_feature.c, rd_kafka_feature_map). A missing range
silently disables the feature: e.g. without FindCoordinator v0, lz4-compressed produce quietly falls back
to uncompressed batches ("Broker does not support compression type lz4: not compressing batch")."""

from __future__ import annotations

import socket

import pytest

from conftest import RielServer
from e2e.helpers import api_versions_v0

# (feature, api key, api name, version that must be inside the advertised range)
LIBRDKAFKA_FEATURE_GATES = [
    ("MsgVer2", 0, "Produce", 3),
    ("MsgVer2", 1, "Fetch", 4),
    ("ZSTD", 0, "Produce", 7),
    ("ZSTD", 1, "Fetch", 10),
    ("OffsetTime", 2, "ListOffsets", 1),
    ("LZ4", 10, "FindCoordinator", 0),
    ("IdempotentProducer", 22, "InitProducerId", 0),
    ("compression at all (Produce v0 in range)", 0, "Produce", 0),
]


@pytest.fixture(scope="module")
def advertised(riel: RielServer) -> dict[int, tuple[int, int]]:
    with socket.create_connection((riel.host, riel.port), timeout=10) as sock:
        return api_versions_v0(sock)


@pytest.mark.parametrize(
    ("feature", "api_key", "api", "version"),
    LIBRDKAFKA_FEATURE_GATES,
    ids=[f"{f}-{a}v{v}" for f, _, a, v in LIBRDKAFKA_FEATURE_GATES],
)
def test_librdkafka_feature_gate_is_open(
    advertised: dict[int, tuple[int, int]], feature: str, api_key: int, api: str, version: int
) -> None:
    assert api_key in advertised, f"{api} ({api_key}) not advertised: librdkafka disables {feature}"
    lo, hi = advertised[api_key]
    assert lo <= version <= hi, (
        f"{api} advertised {lo}..{hi}, librdkafka needs v{version} in range for {feature}"
    )


def test_advertised_ranges_are_sane_and_cover_the_promised_apis(riel: RielServer) -> None:
    """min <= max everywhere, and every API the broker promises (produce, fetch, offsets, metadata, admin)
    is advertised."""
    with socket.create_connection((riel.host, riel.port), timeout=10) as sock:
        apis = api_versions_v0(sock)
    for key, (lo, hi) in apis.items():
        assert 0 <= lo <= hi, f"api {key}: bad range {lo}..{hi}"
    promised = {0, 1, 2, 3, 18, 19, 20, 21, 22, 32, 33, 37, 44}
    assert promised <= set(apis), f"missing APIs: {sorted(promised - set(apis))}"
