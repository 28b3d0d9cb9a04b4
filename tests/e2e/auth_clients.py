"""Real clients logging in to a real ``riel serve``: settings for SASL and TLS in each client's dialect,
and bounded produce-then-consume round trips (kafka-python, aiokafka, confluent-kafka, kcat).

Shared by the SASL and TLS end-to-end tests. Settings are kept in kafka-python's spelling for
kafka-python and aiokafka, and librdkafka's for confluent-kafka and kcat."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from typing import Any

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
USER, PASSWORD = "alice", "wonder land"
TIMEOUT_S = 20.0


def riel_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riel", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def kp_config(
    bootstrap: str,
    mechanism: str,
    user: str = USER,
    password: str = PASSWORD,
    protocol: str = "SASL_PLAINTEXT",
    **extra: Any,
) -> dict[str, Any]:
    """kafka-python / aiokafka settings for a SASL login."""
    return {
        "bootstrap_servers": bootstrap,
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
        **extra,
    }


def ck_config(
    bootstrap: str,
    mechanism: str,
    user: str = USER,
    password: str = PASSWORD,
    protocol: str = "SASL_PLAINTEXT",
    **extra: Any,
) -> dict[str, Any]:
    """librdkafka settings for a SASL login (extra keys in librdkafka's spelling, dots as given)."""
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "log_level": 2,
        **extra,
    }


def kp_round_trip(config: dict[str, Any], topic: str, n: int = 5) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(**config)
    try:
        for i in range(n):
            producer.send(topic, f"kp-{i}".encode()).get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=5)
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=5000, **config)
    try:
        return [m.value for m in consumer]
    finally:
        consumer.close()


def aiokafka_settings(config: dict[str, Any]) -> dict[str, Any]:
    """kafka-python settings turned into aiokafka's: TLS files become an ``ssl_context``."""
    from aiokafka.helpers import create_ssl_context

    files = {k: config[k] for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if k in config}
    settings = {k: v for k, v in config.items() if k not in files}
    if files:
        settings["ssl_context"] = create_ssl_context(
            cafile=files.get("ssl_cafile"),
            certfile=files.get("ssl_certfile"),
            keyfile=files.get("ssl_keyfile"),
        )
    return settings


def aiokafka_round_trip(config: dict[str, Any], topic: str, n: int = 5) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    settings = aiokafka_settings(config)

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(**settings)
        await asyncio.wait_for(producer.start(), TIMEOUT_S)
        try:
            for i in range(n):
                await asyncio.wait_for(producer.send_and_wait(topic, f"aio-{i}".encode()), TIMEOUT_S)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **settings)
        await asyncio.wait_for(consumer.start(), TIMEOUT_S)
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while len(values) < n and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                values += [m.value for ms in batches.values() for m in ms if m.value is not None]
        finally:
            await consumer.stop()
        return values

    return asyncio.run(run())


def ck_round_trip(config: dict[str, Any], topic: str, n: int = 5) -> list[bytes]:
    from confluent_kafka import Consumer, Producer

    producer = Producer(config)
    for i in range(n):
        producer.produce(topic, f"ck-{i}".encode())
    assert producer.flush(TIMEOUT_S) == 0
    consumer = Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(values) < n and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def ck_login_error(config: dict[str, Any]) -> str:
    """The first error librdkafka reports while trying to connect (empty if none within the timeout)."""
    from confluent_kafka import KafkaError, Producer

    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append})
    deadline = time.monotonic() + TIMEOUT_S
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    return f"{errors[0].name()}: {errors[0].str()}" if errors else ""


def kcat_round_trip(bootstrap: str, settings: dict[str, str], topic: str) -> list[str]:
    """Produce two lines with Debian's kcat (librdkafka 2.0.2) and read them back."""
    kcat = shutil.which("kcat")
    assert kcat is not None
    options = [arg for key, value in settings.items() for arg in ("-X", f"{key}={value}")]
    produced = subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic, *options],
        input="one\ntwo\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert consumed.returncode == 0, consumed.stderr
    return consumed.stdout.split()


def kcat_sasl_settings(mechanism: str, protocol: str = "SASL_PLAINTEXT") -> dict[str, str]:
    return {
        "security.protocol": protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": USER,
        "sasl.password": PASSWORD,
    }
