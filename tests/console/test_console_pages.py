"""The web console's pages and JSON endpoints over HTTP (httpx) against a real ``riel serve``.

Faster than the browser test and broader: offset and time seeks, text/JSON/hex rendering, headers,
escaping, clear 404s, group lag, the throughput samples and the integrity check of append-only topics
(including a tampered log).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import RielServer
from e2e.helpers import create_topic, partition_dir, unique_topic

CLIENT_TIMEOUT_S = 20.0
# Fixed timestamps one second apart, an hour ago: recent enough that retention (7 days) keeps them.
T0_MS = (int(time.time()) - 3600) * 1000
N = 20


def wait_http(server: RielServer, timeout: float = 15.0) -> httpx.Client:
    """A client for the console once its listener answers (it starts just after the Kafka port)."""
    client = httpx.Client(base_url=server.http_url, timeout=CLIENT_TIMEOUT_S)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/health").status_code == 200:
                return client
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            client.close()
            pytest.fail(f"the console did not answer on {server.http_url} within {timeout}s")
        time.sleep(0.05)


def produce(server: RielServer, topic: str, messages: list[dict[str, Any]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": server.bootstrap, "linger.ms": 0, "acks": "all"})
    errors: list[str] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for m in messages:
        producer.produce(topic, on_delivery=report, **m)
        producer.flush(CLIENT_TIMEOUT_S)  # one batch per message: keeps timestamps in order per batch
    assert producer.flush(CLIENT_TIMEOUT_S) == 0 and not errors, errors


@pytest.fixture(scope="module")
def topic(riel: RielServer) -> str:
    """Partition 0: N records ``{"n": i}`` keyed ``key-i`` with a header, at T0 + i s; then a text, a
    binary and an HTML-looking record. Partition 1 stays empty."""
    name = unique_topic("console")
    create_topic(riel.bootstrap, name, 2)
    messages: list[dict[str, Any]] = [
        {
            "partition": 0,
            "key": f"key-{i}".encode(),
            "value": json.dumps({"n": i}).encode(),
            "headers": [("trace", f"t{i}".encode()), ("bin", b"\x00\xff")],
            "timestamp": T0_MS + i * 1000,
        }
        for i in range(N)
    ]
    messages += [
        {"partition": 0, "value": b"plain text value", "timestamp": T0_MS + N * 1000},
        {"partition": 0, "key": b"\x00\x01\x02", "value": b"\xde\xad\xbe\xef", "timestamp": T0_MS + N * 1000},
        {"partition": 0, "value": b"<script>alert(1)</script>", "timestamp": T0_MS + N * 1000},
    ]
    produce(riel, name, messages)
    return name


@pytest.fixture(scope="module")
def http(riel: RielServer) -> Iterator[httpx.Client]:
    client = wait_http(riel)
    try:
        yield client
    finally:
        client.close()


def messages(http: httpx.Client, topic: str, partition: int = 0, **params: Any) -> dict[str, Any]:
    response = http.get(f"/api/topics/{topic}/{partition}/messages", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# ------------------------------------------------------------------------------------------ overview


def test_overview_lists_topics_sizes_and_connections(http: httpx.Client, topic: str) -> None:
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'href="/topics/{topic}"' in page.text
    assert 'id="throughput"' in page.text
    data = http.get("/api/overview").json()
    (view,) = [t for t in data["topics"] if t["name"] == topic]
    assert [p["high_watermark"] for p in view["partitions"]] == [N + 3, 0]
    assert view["size_bytes"] > 0 and view["messages"] == N + 3
    assert isinstance(data["connections"], list)


def test_pages_use_only_our_own_files(http: httpx.Client, topic: str) -> None:
    """Offline: no CDN, every script and stylesheet comes from /static."""
    for path in ["/", f"/topics/{topic}", "/groups"]:
        html = http.get(path).text
        assert "http://" not in html and "https://" not in html, path
        assert '<script src="/static/console.js"' in html
    assert "startLiveTail" in http.get("/static/console.js").text
    assert http.get("/static/console.css").status_code == 200


def test_throughput_is_sampled_every_second(http: httpx.Client, topic: str) -> None:
    http.get("/api/throughput")  # starts the sampler
    deadline = time.monotonic() + 10
    rates: list[dict[str, float]] = []
    while time.monotonic() < deadline and len(rates) < 2:
        time.sleep(0.5)
        rates = http.get("/api/throughput").json()["rates"]
    assert len(rates) >= 2, rates
    assert set(rates[0]) == {"time", "bytes_in", "messages_in", "bytes_out", "messages_out"}
    assert rates[1]["time"] > rates[0]["time"]


# ----------------------------------------------------------------------------------------- topic page


def test_topic_page_shows_partitions_and_configs(http: httpx.Client, topic: str) -> None:
    page = http.get(f"/topics/{topic}")
    assert page.status_code == 200
    assert 'id="partitions"' in page.text and 'id="configs"' in page.text
    assert "cleanup.policy" in page.text and "retention.ms" in page.text
    data = http.get(f"/api/topics/{topic}").json()
    assert [(p["log_start_offset"], p["high_watermark"]) for p in data["partitions"]] == [(0, N + 3), (0, 0)]
    assert data["configs"]["riel.append.only"] == "false"


def test_seek_by_offset(http: httpx.Client, topic: str) -> None:
    page = messages(http, topic, offset=5, limit=3)
    assert [m["offset"] for m in page["messages"]] == [5, 6, 7]
    assert page["next_offset"] == 8 and page["high_watermark"] == N + 3
    first = page["messages"][0]
    assert first["key"] == {"text": "key-5", "format": "text", "size": 5, "truncated": False}
    assert json.loads(first["value"]["text"]) == {"n": 5} and first["value"]["format"] == "json"
    assert first["timestamp"] == T0_MS + 5000 and first["time"].endswith("Z")
    html = http.get(f"/topics/{topic}", params={"offset": 5, "limit": 3}).text
    assert '<tr data-offset="5">' in html and '<tr data-offset="8">' not in html
    assert "key-5" in html


def test_seek_from_the_end_and_past_the_end(http: httpx.Client, topic: str) -> None:
    assert [m["offset"] for m in messages(http, topic, offset=-2)["messages"]] == [N + 1, N + 2]
    tail = messages(http, topic, offset=1000)
    assert tail["messages"] == [] and tail["next_offset"] == N + 3  # a live tail waits at the end
    assert messages(http, topic, 1)["messages"] == []


def test_seek_by_time(http: httpx.Client, topic: str) -> None:
    iso = datetime.fromtimestamp((T0_MS + 5500) / 1000, UTC).isoformat().replace("+00:00", "Z")
    by_iso = messages(http, topic, time=iso, limit=2)
    assert [m["offset"] for m in by_iso["messages"]] == [6, 7]
    by_ms = messages(http, topic, time=T0_MS + 5500, limit=1)
    assert [m["offset"] for m in by_ms["messages"]] == [6]
    before = messages(http, topic, time=T0_MS - 10_000, limit=1)
    assert [m["offset"] for m in before["messages"]] == [0]
    after = messages(http, topic, time=T0_MS + 10_000_000)
    assert after["messages"] == [] and after["start"] == N + 3
    html = http.get(f"/topics/{topic}", params={"time": iso, "limit": 1}).text
    assert '<tr data-offset="6">' in html
    bad = http.get(f"/api/topics/{topic}/0/messages", params={"time": "yesterday"})
    assert bad.status_code == 400 and "yesterday" in bad.json()["error"]


def test_render_as_text_json_and_hex(http: httpx.Client, topic: str) -> None:
    def one(offset: int, fmt: str) -> dict[str, Any]:
        result: dict[str, Any] = messages(http, topic, offset=offset, limit=1, format=fmt)["messages"][0]
        return result

    assert one(0, "text")["value"] == {"text": '{"n": 0}', "format": "text", "size": 8, "truncated": False}
    assert one(0, "json")["value"]["text"] == '{\n  "n": 0\n}'
    hexed = one(0, "hex")["value"]
    assert hexed["format"] == "hex" and hexed["text"].startswith("00000000  7b 22 6e 22 3a 20 30 7d")
    assert hexed["text"].endswith('{"n": 0}')
    assert one(N, "json")["value"] == {
        "text": "plain text value",
        "format": "text",
        "size": 16,
        "truncated": False,
    }
    binary = one(N + 1, "text")  # not UTF-8: falls back to hex
    assert binary["value"]["format"] == "hex" and "de ad be ef" in binary["value"]["text"]
    assert binary["key"]["format"] == "hex" and "00 01 02" in binary["key"]["text"]
    assert one(N, "auto")["key"] == {"text": None, "format": "null", "size": 0, "truncated": False}
    html = http.get(f"/topics/{topic}", params={"offset": 0, "limit": 1, "format": "hex"}).text
    assert "00000000  7b 22 6e 22" in html


def test_headers(http: httpx.Client, topic: str) -> None:
    (m,) = messages(http, topic, offset=3, limit=1)["messages"]
    assert [(h["name"], h["value"]["text"].split(), h["value"]["format"]) for h in m["headers"]] == [
        ("trace", ["t3"], "text"),
        ("bin", ["00000000", "00", "ff", ".."], "hex"),
    ]
    html = http.get(f"/topics/{topic}", params={"offset": 3, "limit": 1}).text
    assert "<b>trace</b>" in html and "t3" in html


def test_values_are_escaped(http: httpx.Client, topic: str) -> None:
    html = http.get(f"/topics/{topic}", params={"offset": N + 2, "limit": 1}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_paging_links(http: httpx.Client, topic: str) -> None:
    html = http.get(f"/topics/{topic}", params={"offset": 10, "limit": 5}).text
    assert "offset=15&amp;" in html and "offset=5&amp;" in html


def test_unknown_topic_partition_and_group_are_clear_404s(http: httpx.Client, topic: str) -> None:
    page = http.get("/topics/no-such-topic")
    assert page.status_code == 404 and "There is no topic named &#39;no-such-topic&#39;" in page.text
    api = http.get("/api/topics/no-such-topic/0/messages")
    assert api.status_code == 404 and api.json() == {"error": "there is no topic named 'no-such-topic'"}
    assert http.get(f"/api/topics/{topic}/7/messages").status_code == 404
    assert "has no partition 7" in http.get(f"/topics/{topic}", params={"partition": 7}).text
    group = http.get("/groups/nobody-here")
    assert group.status_code == 404 and "no consumer group named" in group.text
    assert http.get("/api/groups/nobody-here").status_code == 404


# ------------------------------------------------------------------------------------------- groups


def test_group_members_assignment_and_lag(riel: RielServer, http: httpx.Client, topic: str) -> None:
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    group = unique_topic("console-group")
    consumer = KafkaConsumer(
        bootstrap_servers=riel.bootstrap,
        group_id=group,
        client_id="console-test-client",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=20_000,
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert consumer.assignment(), "the consumer got no assignment within 20 s"
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(7, "", -1)})
        data = http.get(f"/api/groups/{group}").json()
        assert data["state"] == "Stable" and data["protocol_type"] == "consumer"
        (member,) = data["members"]
        assert member["client_id"] == "console-test-client" and member["subscribed"] == [topic]
        assert sorted((a["topic"], a["partition"]) for a in member["assigned"]) == [(topic, 0), (topic, 1)]
        lag = {p["partition"]: (p["committed"], p["end_offset"], p["lag"]) for p in data["partitions"]}
        assert lag[0] == (7, N + 3, N + 3 - 7)
        assert data["total_lag"] == N + 3 - 7
        html = http.get(f"/groups/{group}").text
        assert 'id="lag-chart"' in html and "console-test-client" in html and f"{topic} [0, 1]" in html
        listing = http.get("/groups").text
        assert f'href="/groups/{group}"' in listing
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------- integrity


def test_verify_append_only_topic(riel: RielServer, http: httpx.Client) -> None:
    name = unique_topic("console-audit")
    create_topic(riel.bootstrap, name, 2, {"riel.append.only": "true"})
    produce(riel, name, [{"partition": 0, "value": f"entry {i}".encode()} for i in range(5)])
    page = http.get(f"/topics/{name}").text
    assert 'id="verify"' in page and "append-only" in page
    assert "all partitions OK" not in page  # not computed on a page load
    result = http.post(f"/api/topics/{name}/verify").json()
    assert result["ok"] is True
    assert [(p["partition"], p["status"], p["batches"]) for p in result["partitions"]] == [
        (0, "OK", 5),
        (1, "OK", 0),
    ]
    assert "all partitions OK" in http.get(f"/topics/{name}").text  # the last result is shown
    assert "all partitions OK" in http.get(f"/topics/{name}", params={"verify": "1"}).text


def test_verify_names_the_first_tampered_offset(riel: RielServer, http: httpx.Client) -> None:
    name = unique_topic("console-tampered")
    create_topic(riel.bootstrap, name, 1, {"riel.append.only": "true"})
    produce(riel, name, [{"partition": 0, "value": f"entry {i}".encode()} for i in range(4)])
    segment = sorted(partition_dir(riel.data_dir, name, 0).glob("*.log"))[-1]
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last batch (offset 3)
    Path(segment).write_bytes(bytes(data))
    result = http.post(f"/api/topics/{name}/verify").json()
    (p,) = result["partitions"]
    assert result["ok"] is False and p["ok"] is False
    assert p["first_bad_offset"] == 3 and p["status"] == "FAILED at offset 3" and p["reason"]
    html = http.get(f"/topics/{name}", params={"verify": "1"}).text
    assert "FAILED at offset 3" in html


def test_verify_refuses_ordinary_topics(http: httpx.Client, topic: str) -> None:
    response = http.post(f"/api/topics/{topic}/verify")
    assert response.status_code == 400 and "not append-only" in response.json()["error"]
    assert 'id="verify"' not in http.get(f"/topics/{topic}").text


# ------------------------------------------------------------------------------- rendering, in-process


def test_render_bytes_cuts_big_values_and_falls_back() -> None:
    from riel.console.render import MAX_SHOWN_BYTES, parse_time_ms, render_bytes

    big = ("é" * MAX_SHOWN_BYTES).encode()  # 2 bytes a character: the cut splits one
    shown = render_bytes(big, "text")
    assert shown.truncated and shown.format == "text" and shown.size == len(big)
    assert shown.text == "é" * (MAX_SHOWN_BYTES // 2)
    assert render_bytes(b'{"a": [1, 2]}', "auto").format == "json"
    assert render_bytes(b"12 apples", "json").format == "text"
    assert render_bytes(b"line\x07bell", "text").format == "hex"  # control characters are not text
    assert render_bytes(b"", "auto") == render_bytes(b"", "text")
    assert render_bytes(None, "hex").text is None
    assert parse_time_ms("2026-01-01T00:00:00") == parse_time_ms("2026-01-01T00:00:00Z") == 1_767_225_600_000
    assert parse_time_ms("1767225600000") == 1_767_225_600_000
    assert parse_time_ms("soon") is None
