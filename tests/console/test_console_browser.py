"""The web console in a real headless browser (Playwright driving Debian's chromium).

A real ``riel serve``: the test produces messages, starts a consumer group that consumes and commits
part of them (so its lag is known), then the browser opens the overview, the topic, seeks to an offset
and sees the right message, watches the live tail pick up a new message, opens the group and sees its
lag, and verifies an append-only topic. Screenshots go to ``test-artifacts/console/`` (collected by CI).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import RielServer
from e2e.helpers import create_topic, unique_topic

CHROMIUM = os.environ.get("RIEL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
WAIT_MS = 10_000  # every browser wait is bounded by this
CLIENT_TIMEOUT_S = 20.0
PRODUCED = 50
COMMITTED = 20


def wait_http(server: RielServer, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.http_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"the console did not answer on {server.http_url} within {timeout}s")


def produce(server: RielServer, topic: str, values: list[bytes], partition: int = 0) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": server.bootstrap, "linger.ms": 5})
    errors: list[str] = []
    for i, value in enumerate(values):
        producer.produce(
            topic,
            value=value,
            key=f"order-key-{i}".encode(),
            partition=partition,
            headers=[("source", b"browser-test")],
            on_delivery=lambda err, _msg: errors.append(str(err)) if err is not None else None,
        )
    assert producer.flush(CLIENT_TIMEOUT_S) == 0 and not errors, errors


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A headless chromium page; a launch failure is a test failure with Playwright's exact error."""
    from playwright.sync_api import Error, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install chromium (or set RIEL_CHROMIUM)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=30_000)
        except Error as exc:
            pytest.fail(f"Playwright could not start {CHROMIUM}: {exc}")
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert not errors, f"JavaScript errors in the console: {errors}"
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_console_in_a_browser(riel: RielServer, browser_page: Any) -> None:
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
    from playwright.sync_api import expect

    page = browser_page
    wait_http(riel)
    topic, audit, group = unique_topic("orders"), unique_topic("ledger"), unique_topic("kitchen")
    create_topic(riel.bootstrap, topic, 1)
    create_topic(riel.bootstrap, audit, 1, {"riel.append.only": "true"})
    produce(riel, topic, [f'{{"order": {i}, "dish": "soup"}}'.encode() for i in range(PRODUCED)])
    produce(riel, audit, [f"ledger entry {i}".encode() for i in range(10)])

    consumer = KafkaConsumer(
        bootstrap_servers=riel.bootstrap,
        group_id=group,
        client_id="kitchen-cook-1",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=COMMITTED,
        request_timeout_ms=20_000,
    )
    try:
        consumer.subscribe([topic])
        consumed: list[Any] = []
        deadline = time.monotonic() + 20
        while len(consumed) < COMMITTED and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=COMMITTED - len(consumed)).values():
                consumed.extend(records)
        assert len(consumed) == COMMITTED, f"consumed {len(consumed)} of {COMMITTED} within 20 s"
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(COMMITTED, "", -1)})

        # Overview: the topics, a throughput graph that gets points, the group.
        page.goto(riel.http_url + "/")
        expect(page.locator("#topics")).to_contain_text(topic)
        expect(page.locator("#topics")).to_contain_text("append-only")
        expect(page.locator("#groups")).to_contain_text(group)
        page.wait_for_function(  # the graph drew at least one sample
            "Number(document.getElementById('throughput').dataset.samples) > 0", timeout=WAIT_MS
        )
        # Traffic while the page watches (another topic, so the offsets checked below stay put).
        produce(riel, unique_topic("traffic"), [b"x" * 500] * 200)
        page.wait_for_function(
            "Number(document.getElementById('throughput').dataset.peak) > 0", timeout=WAIT_MS
        )
        page.wait_for_timeout(1500)  # one more sample, so the graph shows a line rather than a point
        shot(page, "01-overview")

        # Topic page: partitions with start and end offsets.
        page.get_by_role("link", name=topic, exact=True).click()
        expect(page.locator("#topic-name")).to_have_text(topic)
        first_row = page.locator("#partitions tbody tr").first
        expect(first_row.locator("td").nth(1)).to_have_text("0")
        expect(first_row.locator("td").nth(2)).to_have_text(str(PRODUCED))
        shot(page, "02-topic")

        # Seek to offset 42: the first row is message 42, rendered as JSON.
        page.fill("#offset", "42")
        page.select_option("#format", "json")
        page.click("#seek")
        row = page.locator("#messages tbody tr").first
        expect(row).to_have_attribute("data-offset", "42")
        expect(row.locator("td.key")).to_have_text("order-key-42")
        expect(row.locator("td.value pre")).to_have_class("fmt-json")
        expect(row.locator("td.value")).to_contain_text('"order": 42')
        expect(row.locator("td.headers")).to_contain_text("source: browser-test")
        expect(page.locator("#messages tbody tr")).to_have_count(PRODUCED - 42)
        shot(page, "03-browse-offset-42")

        # Live tail: a message produced now shows up without reloading.
        page.check("#live-tail")
        produce(riel, topic, [b'{"order": "late", "dish": "tart"}'])
        expect(page.locator(f'#messages tbody tr[data-offset="{PRODUCED}"]')).to_contain_text("tart")
        page.uncheck("#live-tail")
        shot(page, "04-live-tail")

        # The group: its member, its assignment and its lag (51 - 20 = 31 on partition 0).
        page.goto(riel.http_url + "/groups")
        page.get_by_role("link", name=group, exact=True).click()
        expect(page.locator("#group-name")).to_have_text(group)
        expect(page.locator("#members")).to_contain_text("kitchen-cook-1")
        expect(page.locator("#members td.assignment")).to_have_text(f"{topic} [0]")
        lag_row = page.locator(f'#lag tr[data-topic="{topic}"][data-partition="0"]')
        expect(lag_row.locator("td.lag")).to_have_text(str(PRODUCED + 1 - COMMITTED))
        expect(page.locator("#total-lag")).to_have_text(str(PRODUCED + 1 - COMMITTED))
        expect(page.locator("#lag-chart rect")).to_have_count(1)
        shot(page, "05-group-lag")

        # The lag table follows new commits without a reload.
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(COMMITTED + 10, "", -1)})
        expect(lag_row.locator("td.lag")).to_have_text(str(PRODUCED + 1 - COMMITTED - 10))
        expect(page.locator("#total-lag")).to_have_text(str(PRODUCED + 1 - COMMITTED - 10))
    finally:
        consumer.close()

    # Integrity of the append-only topic, computed when asked.
    page.goto(f"{riel.http_url}/topics/{audit}")
    expect(page.locator("#integrity-result")).not_to_contain_text("OK")
    page.click("#verify")
    expect(page.locator("#integrity-result")).to_contain_text("all partitions OK")
    expect(page.locator("#integrity-result tbody tr")).to_have_count(1)
    shot(page, "06-integrity")
