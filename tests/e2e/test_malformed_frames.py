"""Hostile bytes on raw sockets: the offending connection is closed, other clients keep working, and the
broker does not allocate what a frame header merely claims."""

from __future__ import annotations

import os
import random
import socket
import struct
import time
from collections.abc import Callable

import pytest

from conftest import RielServer
from e2e.helpers import api_versions_v0, confluent_admin, encode_request

RSS_SLACK = 50 * 1024 * 1024


def assert_closed_by_broker(sock: socket.socket, timeout: float = 10.0) -> None:
    """The broker must close: recv returns b'' (or the connection is reset) within `timeout`. A few bytes
    before the close (an error response) are tolerated; a connection left open is not."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    received = 0
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return
        except TimeoutError:
            pytest.fail(
                f"connection still open {timeout}s after the malformed frame ({received} bytes received)"
            )
        if not chunk:
            return
        received += len(chunk)
        assert received < 1 << 20, "broker kept sending data on a poisoned connection"
        assert time.monotonic() < deadline


def connect(server: RielServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def http_request(sock: socket.socket) -> None:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: riel\r\n\r\n")  # size prefix reads as ~1.2 GB


def random_garbage(sock: socket.socket) -> None:
    # A plausible small size prefix, then noise (fixed seed; api key 0xDEAD does not exist).
    sock.sendall(struct.pack(">i", 64) + b"\xde\xad" + random.Random(7).randbytes(62))


def unknown_api_key(sock: socket.socket) -> None:
    body = struct.pack(">hhih", 0x7ABC, 0, 1, 3) + b"raw" + os.urandom(40)
    sock.sendall(struct.pack(">i", len(body)) + body)


def negative_size(sock: socket.socket) -> None:
    sock.sendall(b"\xff\xff\xff\xf0" + b"\x00" * 64)


def zero_size(sock: socket.socket) -> None:
    sock.sendall(b"\x00\x00\x00\x00")


def tiny_frame(sock: socket.socket) -> None:
    sock.sendall(struct.pack(">i", 3) + b"\x00\x12\x00")  # shorter than any request header


def truncated_frame(sock: socket.socket) -> None:
    frame = encode_request(3, 1, 5, struct.pack(">i", 1) + struct.pack(">h", 10) + b"some-topic")
    sock.sendall(frame[: len(frame) // 2])
    sock.shutdown(socket.SHUT_WR)  # EOF in the middle of a frame


def truncated_body(sock: socket.socket) -> None:
    # A complete frame whose Metadata v1 body claims 5 topics but carries half of one.
    sock.sendall(encode_request(3, 1, 6, struct.pack(">i", 5) + struct.pack(">h", 40) + b"half"))


def bad_string_length(sock: socket.socket) -> None:
    # ApiVersions v0 header whose client_id length points far past the frame.
    body = struct.pack(">hhih", 18, 0, 9, 30_000) + b"x" * 8
    sock.sendall(struct.pack(">i", len(body)) + body)


CASES: list[Callable[[socket.socket], None]] = [
    http_request,
    random_garbage,
    unknown_api_key,
    negative_size,
    zero_size,
    tiny_frame,
    truncated_frame,
    truncated_body,
    bad_string_length,
]


@pytest.mark.parametrize("send", CASES, ids=lambda f: f.__name__)
def test_malformed_frame_closes_only_that_connection(
    riel: RielServer, send: Callable[[socket.socket], None]
) -> None:
    with connect(riel) as bystander:
        assert 18 in api_versions_v0(bystander, correlation_id=1)
        rss_before = riel.rss_bytes()
        with connect(riel) as victim:
            send(victim)
            assert_closed_by_broker(victim)
        assert riel.is_running(), f"broker died:\n{riel.log_tail()}"
        assert 3 in api_versions_v0(bystander, correlation_id=2), "a connection opened before was disturbed"
        with connect(riel) as fresh:
            assert 0 in api_versions_v0(fresh, correlation_id=3)
        growth = riel.rss_bytes() - rss_before
        assert growth < RSS_SLACK, f"broker RSS grew by {growth / 1e6:.1f} MB"


def test_frame_claiming_2gb_is_not_allocated(riel: RielServer) -> None:
    """A size prefix of 2 GB followed by a stream of bytes: the broker must refuse the frame (close)
    rather than buffer towards it."""
    rss_before = riel.rss_bytes()
    sent = 0
    with connect(riel) as victim:
        victim.sendall(struct.pack(">i", 0x7FFFFFFF) + struct.pack(">hhih", 0, 9, 1, 3) + b"raw")
        chunk = b"\x00" * (1 << 20)
        victim.settimeout(2)
        try:
            for _ in range(200):  # up to 200 MB; a broker that closes stops us early
                victim.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        # Stop writing; the broker should have closed (or close now).
        assert_closed_by_broker(victim)
    time.sleep(0.2)
    growth = riel.rss_bytes() - rss_before
    assert growth < RSS_SLACK, f"broker RSS grew by {growth / 1e6:.1f} MB after {sent / 1e6:.0f} MB sent"
    with connect(riel) as fresh:
        assert 18 in api_versions_v0(fresh)


def test_many_hostile_connections_then_a_real_client_works(riel: RielServer) -> None:
    rss_before = riel.rss_bytes()
    for i in range(100):
        with connect(riel) as s:
            CASES[i % len(CASES)](s)
            assert_closed_by_broker(s)
    growth = riel.rss_bytes() - rss_before
    assert growth < RSS_SLACK, f"broker RSS grew by {growth / 1e6:.1f} MB over 100 hostile connections"
    md = confluent_admin(riel.bootstrap).list_topics(timeout=20)
    assert 0 in md.brokers and md.brokers[0].port == riel.port
